package safetensors

import (
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

// WriteFile writes tensors, in the given order, to a safetensors file at path. The header
// is padded with spaces to a multiple of 8 so the data section stays aligned. The file
// appears atomically: it is written to a temporary name in the same folder and renamed,
// so a reader never sees half a file.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	header := make(map[string]any, len(tensors)+1)
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var offset int64
	for _, t := range tensors {
		if t.Name == "__metadata__" {
			return fmt.Errorf("%s: tensor name %q is reserved", path, t.Name)
		}
		if _, dup := header[t.Name]; dup {
			return fmt.Errorf("%s: tensor %q given twice", path, t.Name)
		}
		elem := elementBytes[t.DType]
		if elem == 0 {
			return fmt.Errorf("%s: tensor %q: unsupported dtype %q", path, t.Name, t.DType)
		}
		numel := int64(1)
		for _, d := range t.Shape {
			if d < 0 {
				return fmt.Errorf("%s: tensor %q: negative dimension in shape %v", path, t.Name, t.Shape)
			}
			if d != 0 && numel > math.MaxInt64/elem/int64(d) {
				return fmt.Errorf("%s: tensor %q: shape %v overflows the byte count", path, t.Name, t.Shape)
			}
			numel *= int64(d)
		}
		if want := numel * elem; int64(len(t.Data)) != want {
			return fmt.Errorf("%s: tensor %q: shape %v of %s needs %d bytes, have %d", path, t.Name, t.Shape, t.DType, want, len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{} // a scalar is "shape": [], never null
		}
		header[t.Name] = writeEntry{t.DType, shape, [2]int64{offset, offset + int64(len(t.Data))}}
		offset += int64(len(t.Data))
	}
	js, err := json.Marshal(header) // map keys sorted: same bytes on every run
	if err != nil {
		return fmt.Errorf("%s: encoding header: %v", path, err)
	}
	if pad := (8 - len(js)%8) % 8; pad > 0 {
		js = append(js, bytes.Repeat([]byte{' '}, pad)...)
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(js)))
	werr := writeAll(tmp, lenBuf[:], js)
	for _, t := range tensors {
		if werr != nil {
			break
		}
		werr = writeAll(tmp, t.Data)
	}
	if werr == nil {
		werr = tmp.Chmod(0o644)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("%s: %v", path, werr)
	}
	return os.Rename(tmp.Name(), path)
}

func writeAll(f *os.File, parts ...[]byte) error {
	for _, p := range parts {
		if _, err := f.Write(p); err != nil {
			return err
		}
	}
	return nil
}
