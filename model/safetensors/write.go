package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Tensor is one tensor to write: raw little-endian, row-major data.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// EncodeFloat32 makes a tensor of dtype BF16, F16 (both rounded to nearest, ties to even)
// or F32 from float32 values. Any other dtype gives a tensor without data, which WriteFile
// rejects, naming the tensor.
func EncodeFloat32(name string, shape []int, v []float32, dtype DType) Tensor {
	t := Tensor{Name: name, DType: dtype, Shape: append([]int(nil), shape...)}
	switch dtype {
	case BF16:
		t.Data = make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(t.Data[2*i:], Float32ToBF16(x))
		}
	case F16:
		t.Data = make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(t.Data[2*i:], Float32ToF16(x))
		}
	case F32:
		t.Data = make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(t.Data[4*i:], math.Float32bits(x))
		}
	}
	return t
}

type writeEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// Entry is one tensor of a file written with Create: its data follows the previous
// entry's.
type Entry struct {
	Name  string
	DType DType
	Shape []int
}

// WriteFile writes tensors, in the given order, to a safetensors file at path. The header
// is padded with spaces to a multiple of 8 so the data section stays aligned. The file
// appears atomically: it is written to a temporary name in the same folder and renamed,
// so a reader never sees half a file.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	entries := make([]Entry, len(tensors))
	for i, t := range tensors {
		entries[i] = Entry{t.Name, t.DType, t.Shape}
	}
	w, err := Create(path, entries, metadata)
	if err != nil {
		return err
	}
	defer w.Abort() // no-op after Close
	for i, t := range tensors {
		if want := w.sizes[i]; int64(len(t.Data)) != want {
			return fmt.Errorf("%s: tensor %q: shape %v of %s needs %d bytes, have %d", path, t.Name, t.Shape, t.DType, want, len(t.Data))
		}
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return w.Close()
}

// Writer streams the data of a safetensors file whose tensors are known up front
// (Create): Write takes the data of the entries in order, in pieces of any size, so a
// file of gigabytes is written without holding a tensor in memory. The file appears
// atomically at Close; Abort (or a failed Close) removes it.
type Writer struct {
	path    string
	tmp     *os.File
	buf     *bufio.Writer
	sizes   []int64 // bytes of each entry
	left    int64   // data bytes still expected
	werr    error
	aborted bool
}

// Create writes the header of a safetensors file with entries (in data order) and
// metadata, to a temporary file next to path. Names must be unique and not
// "__metadata__"; dtypes known; shapes non-negative and their byte counts within int64.
func Create(path string, entries []Entry, metadata map[string]string) (*Writer, error) {
	header := make(map[string]any, len(entries)+1)
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	sizes := make([]int64, len(entries))
	var offset int64
	for i, t := range entries {
		if t.Name == "__metadata__" {
			return nil, fmt.Errorf("%s: tensor name %q is reserved", path, t.Name)
		}
		if _, dup := header[t.Name]; dup {
			return nil, fmt.Errorf("%s: tensor %q given twice", path, t.Name)
		}
		elem := elementBytes[t.DType]
		if elem == 0 {
			return nil, fmt.Errorf("%s: tensor %q: unsupported dtype %q", path, t.Name, t.DType)
		}
		numel := int64(1)
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("%s: tensor %q: negative dimension in shape %v", path, t.Name, t.Shape)
			}
			if d != 0 && numel > math.MaxInt64/elem/int64(d) {
				return nil, fmt.Errorf("%s: tensor %q: shape %v overflows the byte count", path, t.Name, t.Shape)
			}
			numel *= int64(d)
		}
		sizes[i] = numel * elem
		if offset > math.MaxInt64-sizes[i] {
			return nil, fmt.Errorf("%s: tensor %q: the data section overflows int64", path, t.Name)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{} // a scalar is "shape": [], never null
		}
		header[t.Name] = writeEntry{t.DType, shape, [2]int64{offset, offset + sizes[i]}}
		offset += sizes[i]
	}
	js, err := json.Marshal(header) // map keys sorted: same bytes on every run
	if err != nil {
		return nil, fmt.Errorf("%s: encoding header: %v", path, err)
	}
	if pad := (8 - len(js)%8) % 8; pad > 0 {
		js = append(js, bytes.Repeat([]byte{' '}, pad)...)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	w := &Writer{path: path, tmp: tmp, buf: bufio.NewWriterSize(tmp, 1<<20), sizes: sizes, left: offset}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(js)))
	w.write(lenBuf[:])
	w.write(js)
	if w.werr != nil {
		w.Abort()
		return nil, fmt.Errorf("%s: %v", path, w.werr)
	}
	return w, nil
}

func (w *Writer) write(p []byte) {
	if w.werr == nil {
		_, w.werr = w.buf.Write(p)
	}
}

// Write appends tensor data; more than the entries hold is an error, and so is every
// later Write and the Close.
func (w *Writer) Write(p []byte) (int, error) {
	if w.aborted {
		return 0, fmt.Errorf("%s: write after Abort", w.path)
	}
	if int64(len(p)) > w.left && w.werr == nil {
		w.werr = fmt.Errorf("%d bytes of data past the %d the header announces", int64(len(p))-w.left, w.left)
	}
	if w.werr != nil { // sticky: Close fails too
		return 0, fmt.Errorf("%s: %v", w.path, w.werr)
	}
	if w.write(p); w.werr != nil {
		return 0, fmt.Errorf("%s: %v", w.path, w.werr)
	}
	w.left -= int64(len(p))
	return len(p), nil
}

// Close checks that every announced byte was written, syncs the file and renames it into
// place. On failure the temporary file is removed.
func (w *Writer) Close() error {
	if w.aborted {
		return fmt.Errorf("%s: Close after Abort", w.path)
	}
	if w.left != 0 && w.werr == nil {
		w.werr = fmt.Errorf("%d bytes of tensor data missing", w.left)
	}
	if w.werr == nil {
		w.werr = w.buf.Flush()
	}
	if w.werr == nil {
		w.werr = w.tmp.Chmod(0o644)
	}
	if w.werr == nil {
		w.werr = w.tmp.Sync()
	}
	if cerr := w.tmp.Close(); w.werr == nil {
		w.werr = cerr
	}
	if w.werr == nil {
		w.werr = os.Rename(w.tmp.Name(), w.path)
	}
	if w.werr != nil {
		os.Remove(w.tmp.Name())
		w.aborted = true
		return fmt.Errorf("%s: %v", w.path, w.werr)
	}
	w.aborted = true // done: later Abort calls do nothing
	return nil
}

// Abort discards the file; it does nothing after Close or a previous Abort.
func (w *Writer) Abort() {
	if w.aborted {
		return
	}
	w.aborted = true
	w.tmp.Close()
	os.Remove(w.tmp.Name())
}
