// Package safetensors reads and writes the safetensors tensor format and Hugging Face
// checkpoint folders made of it (one model.safetensors, or shards listed by
// model.safetensors.index.json).
//
// Reading is lazy: Open parses and validates only the header and keeps the file open;
// every tensor is read on demand with ReadAt at its own offset, so a 35 GB checkpoint is
// never held in memory. Every error names the file and, where there is one, the tensor.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
)

// MaxHeaderBytes bounds the JSON header. The real CogVLM-17B shards have headers of a few
// hundred kilobytes; a larger length is a corrupt or hostile file, not a bigger model.
const MaxHeaderBytes = 100 << 20

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name   string
	DType  DType
	Shape  []int
	Offset int64 // absolute file offset of the first byte
	Size   int64 // bytes
}

// Numel is the number of elements (1 for a scalar of shape []).
func (t TensorInfo) Numel() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// File is an open safetensors file. Its methods may be called from several goroutines.
type File struct {
	path     string
	r        io.ReaderAt
	closer   io.Closer
	tensors  map[string]TensorInfo
	names    []string
	metadata map[string]string
}

// Open parses and validates the header of the safetensors file at path.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError already names the file
	}
	st, err := fd.Stat()
	if err != nil {
		fd.Close()
		return nil, err
	}
	f, err := parse(fd, st.Size(), path)
	if err != nil {
		fd.Close()
		return nil, err
	}
	f.closer = fd
	return f, nil
}

// Parse reads a safetensors stream of size bytes from r (a bytes.Reader in the browser,
// which has no files); name is used in error messages. Close does nothing for it.
func Parse(r io.ReaderAt, size int64, name string) (*File, error) {
	return parse(r, size, name)
}

// headerEntry is one tensor of the JSON header. Pointers tell a missing key from a zero.
type headerEntry struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// parse reads and validates the header of a safetensors byte stream of the given size.
func parse(r io.ReaderAt, size int64, path string) (*File, error) {
	if size < 8 {
		return nil, fmt.Errorf("%s: %d bytes is too short for a safetensors file (8-byte header length missing)", path, size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("%s: reading header length: %v", path, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderBytes {
		return nil, fmt.Errorf("%s: header length %d exceeds the %d-byte limit (not a safetensors file, or corrupt)", path, n, MaxHeaderBytes)
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("%s: header length %d runs past the end of the %d-byte file (truncated?)", path, n, size)
	}
	header := make([]byte, n)
	if _, err := r.ReadAt(header, 8); err != nil {
		return nil, fmt.Errorf("%s: reading %d-byte header: %v", path, n, err)
	}
	dataStart := 8 + int64(n)
	f := &File{path: path, r: r, tensors: map[string]TensorInfo{}}
	entries, err := decodeHeader(header)
	if err != nil {
		return nil, fmt.Errorf("%s: header: %v", path, err)
	}
	type span struct {
		name       string
		begin, end int64
	}
	var spans []span
	for _, e := range entries {
		if e.name == "__metadata__" {
			md := map[string]string{}
			if err := json.Unmarshal(e.raw, &md); err != nil {
				return nil, fmt.Errorf("%s: __metadata__ must map strings to strings: %v", path, err)
			}
			f.metadata = md
			continue
		}
		info, begin, end, err := checkEntry(e.name, e.raw, size-dataStart)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %v", path, e.name, err)
		}
		info.Offset = dataStart + begin
		f.tensors[e.name] = info
		f.names = append(f.names, e.name)
		if end > begin {
			spans = append(spans, span{e.name, begin, end})
		}
	}
	sort.Strings(f.names)
	slices.SortFunc(spans, func(a, b span) int {
		if a.begin != b.begin {
			return compare(a.begin, b.begin)
		}
		return compare(a.end, b.end)
	})
	for i := 1; i < len(spans); i++ {
		if p, s := spans[i-1], spans[i]; s.begin < p.end {
			return nil, fmt.Errorf("%s: tensor %q data [%d,%d) overlaps tensor %q data [%d,%d)", path, s.name, s.begin, s.end, p.name, p.begin, p.end)
		}
	}
	return f, nil
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type rawEntry struct {
	name string
	raw  json.RawMessage
}

// decodeHeader splits the top-level JSON object into its entries, refusing duplicate keys
// (encoding/json would silently keep the last one) and trailing content other than the
// space padding.
func decodeHeader(header []byte) ([]rawEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("bad JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("bad JSON: want an object, found %v", tok)
	}
	var entries []rawEntry
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("bad JSON: %v", err)
		}
		name := tok.(string) // object keys are always strings
		if seen[name] {
			return nil, fmt.Errorf("key %q appears twice", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("bad JSON at key %q: %v", name, err)
		}
		entries = append(entries, rawEntry{name, raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("bad JSON: %v", err)
	}
	if rest := bytes.TrimLeft(header[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, fmt.Errorf("bad JSON: %d unexpected bytes after the header object", len(rest))
	}
	return entries, nil
}

// checkEntry validates one tensor entry against a data section of dataBytes bytes and
// returns its info (Offset still relative) and data_offsets.
func checkEntry(name string, raw json.RawMessage, dataBytes int64) (TensorInfo, int64, int64, error) {
	var e headerEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return TensorInfo{}, 0, 0, fmt.Errorf("bad entry: %v", err)
	}
	switch {
	case e.DType == nil:
		return TensorInfo{}, 0, 0, errors.New("missing dtype")
	case e.Shape == nil:
		return TensorInfo{}, 0, 0, errors.New("missing shape")
	case e.DataOffsets == nil:
		return TensorInfo{}, 0, 0, errors.New("missing data_offsets")
	}
	dtype := DType(*e.DType)
	elem := elementBytes[dtype]
	if elem == 0 {
		return TensorInfo{}, 0, 0, fmt.Errorf("unsupported dtype %q", *e.DType)
	}
	shape := make([]int, len(*e.Shape))
	numel := int64(1)
	for i, d := range *e.Shape {
		if d < 0 {
			return TensorInfo{}, 0, 0, fmt.Errorf("negative dimension %d in shape %v", d, *e.Shape)
		}
		if d > math.MaxInt32 {
			return TensorInfo{}, 0, 0, fmt.Errorf("dimension %d in shape %v is too large", d, *e.Shape)
		}
		if d != 0 && numel > math.MaxInt64/elem/d {
			return TensorInfo{}, 0, 0, fmt.Errorf("shape %v of %s overflows the byte count", *e.Shape, dtype)
		}
		numel *= d
		shape[i] = int(d)
	}
	want := numel * elem
	offs := *e.DataOffsets
	if len(offs) != 2 {
		return TensorInfo{}, 0, 0, fmt.Errorf("data_offsets %v must be [begin, end]", offs)
	}
	begin, end := offs[0], offs[1]
	if begin < 0 || end < begin {
		return TensorInfo{}, 0, 0, fmt.Errorf("data_offsets [%d,%d) are not an interval", begin, end)
	}
	if end-begin != want {
		return TensorInfo{}, 0, 0, fmt.Errorf("shape %v of %s needs %d bytes but data_offsets [%d,%d) hold %d", shape, dtype, want, begin, end, end-begin)
	}
	if end > dataBytes {
		return TensorInfo{}, 0, 0, fmt.Errorf("data_offsets [%d,%d) run past the %d-byte data section (truncated file?)", begin, end, dataBytes)
	}
	return TensorInfo{Name: name, DType: dtype, Shape: shape, Size: want}, begin, end, nil
}

// Path is the file name given to Open.
func (f *File) Path() string { return f.path }

// Names lists the tensor names, sorted.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Info describes the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	t, ok := f.tensors[name]
	if ok {
		t.Shape = slices.Clone(t.Shape)
	}
	return t, ok
}

// Shape is the named tensor's shape.
func (f *File) Shape(name string) ([]int, bool) {
	t, ok := f.tensors[name]
	return slices.Clone(t.Shape), ok
}

// Metadata is a copy of the header's __metadata__ (nil when absent).
func (f *File) Metadata() map[string]string {
	if f.metadata == nil {
		return nil
	}
	md := make(map[string]string, len(f.metadata))
	for k, v := range f.metadata {
		md[k] = v
	}
	return md
}

func (f *File) lookup(name string) (TensorInfo, error) {
	t, ok := f.tensors[name]
	if !ok {
		return TensorInfo{}, fmt.Errorf("%s: no tensor %q", f.path, name)
	}
	return t, nil
}

// ReadRaw copies the named tensor's bytes (little-endian, row-major) into dst, which must
// be exactly Info(name).Size bytes long.
func (f *File) ReadRaw(name string, dst []byte) error {
	t, err := f.lookup(name)
	if err != nil {
		return err
	}
	if int64(len(dst)) != t.Size {
		return fmt.Errorf("%s: tensor %q has %d bytes, destination has %d", f.path, name, t.Size, len(dst))
	}
	return f.readAt(t, dst, t.Offset)
}

// ReadRawAt copies len(dst) bytes of the named tensor, from byte off of its data, into
// dst: a part of a tensor too large to hold whole (the browser's converter reads row
// chunks with one HTTP Range request each).
func (f *File) ReadRawAt(name string, off int64, dst []byte) error {
	t, err := f.lookup(name)
	if err != nil {
		return err
	}
	if off < 0 || off > t.Size || int64(len(dst)) > t.Size-off {
		return fmt.Errorf("%s: tensor %q has %d bytes, cannot read %d at %d", f.path, name, t.Size, len(dst), off)
	}
	return f.readAt(t, dst, t.Offset+off)
}

func (f *File) readAt(t TensorInfo, dst []byte, off int64) error {
	if len(dst) == 0 {
		return nil // ReadAt may report EOF for an empty tensor at the very end
	}
	if _, err := f.r.ReadAt(dst, off); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%s: tensor %q: reading %d bytes at offset %d: %v", f.path, t.Name, len(dst), off, err)
	}
	return nil
}

// ReadFloat32 reads the named BF16, F16 or F32 tensor as float32 and returns it with its
// shape.
func (f *File) ReadFloat32(name string) ([]float32, []int, error) {
	t, err := f.lookup(name)
	if err != nil {
		return nil, nil, err
	}
	if !t.DType.floatConvertible() {
		return nil, nil, fmt.Errorf("%s: tensor %q has dtype %s; only BF16, F16 and F32 convert to float32", f.path, name, t.DType)
	}
	dst := make([]float32, t.Numel())
	if err := f.ReadFloat32Into(name, dst); err != nil {
		return nil, nil, err
	}
	return dst, slices.Clone(t.Shape), nil
}

// convertChunk bounds the staging buffer of ReadFloat32Into: a 500 MB bf16 embedding
// converts through 256 KB instead of a second full-size copy.
const convertChunk = 64 << 10 // elements

// ReadFloat32Into reads the named BF16, F16 or F32 tensor into dst, whose length must be
// the tensor's element count.
func (f *File) ReadFloat32Into(name string, dst []float32) error {
	t, err := f.lookup(name)
	if err != nil {
		return err
	}
	if !t.DType.floatConvertible() {
		return fmt.Errorf("%s: tensor %q has dtype %s; only BF16, F16 and F32 convert to float32", f.path, name, t.DType)
	}
	if n := t.Numel(); int64(len(dst)) != n {
		return fmt.Errorf("%s: tensor %q has %d elements (shape %v), destination has %d", f.path, name, n, t.Shape, len(dst))
	}
	elem := int64(t.DType.Size())
	buf := make([]byte, min(int64(len(dst)), convertChunk)*elem)
	for start := 0; start < len(dst); start += convertChunk {
		part := dst[start:min(start+convertChunk, len(dst))]
		raw := buf[:int64(len(part))*elem]
		if err := f.readAt(t, raw, t.Offset+int64(start)*elem); err != nil {
			return err
		}
		decodeFloat32(t.DType, raw, part)
	}
	return nil
}

// Close closes the underlying file.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}
