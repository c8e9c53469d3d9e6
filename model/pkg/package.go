package pkg

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"unsafe"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/format"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

// Package is an opened package folder. It is a model.MatrixSource: ReadMatrix hands out
// the weight matrices as stored (q4, q8, f16 or f32, memory-mapped where the system
// allows), so the CPU reference holds a package in about its own size; ReadFloat32
// dequantizes q4/q8 and widens f16 for the rest. Each shard's size and SHA-256 are checked
// the first time a tensor of it is read (Verify checks all of them at once); a corrupted
// or truncated shard fails every read from it with an error naming the shard. Safe for
// concurrent use.
type Package struct {
	dir      string
	manifest *format.Manifest
	config   model.Config
	byName   map[string]*format.TensorEntry
	names    []string
	shards   []*shard
}

var _ model.MatrixSource = (*Package)(nil)

// shard is one shard file, opened and verified on first use, and mapped into memory on
// the first ReadMatrix.
type shard struct {
	path    string
	entry   format.FileEntry
	once    sync.Once
	f       *os.File
	err     error
	mapOnce sync.Once
	mapped  *mapping // nil when the shard could not be mapped
}

// mapping is a shard's read-only memory map. The matrices that point into it hold it
// (model.Matrix.Owner); it is unmapped once nothing does, so a model loaded from a
// package stays valid after the package is closed.
type mapping struct{ data []byte }

// mapping maps the verified shard on first use; nil when mapping is unavailable or fails
// (ReadMatrix then reads into the heap).
func (s *shard) mapping() *mapping {
	s.mapOnce.Do(func() {
		f, err := s.file()
		if err != nil || f == nil || !nativeLittleEndian || s.entry.Size == 0 || int64(int(s.entry.Size)) != s.entry.Size {
			return
		}
		data, unmap, err := mapFile(f, s.entry.Size)
		if err != nil {
			return
		}
		m := &mapping{data}
		runtime.AddCleanup(m, unmap, data)
		s.mapped = m
	})
	return s.mapped
}

// nativeLittleEndian: the stored little-endian words can be used in place.
var nativeLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// IsPackage reports whether dir holds a package (a manifest.json) rather than a Hugging
// Face checkpoint.
func IsPackage(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, format.ManifestFileName))
	return err == nil
}

// Open reads and validates dir/manifest.json and checks the tokenizer file's size and
// hash (it is small); shards are checked lazily.
func Open(dir string) (*Package, error) {
	path := filepath.Join(dir, format.ManifestFileName)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, cfg, err := format.ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	p := &Package{dir: dir, manifest: m, config: cfg, byName: map[string]*format.TensorEntry{}}
	for i := range m.Tensors {
		t := &m.Tensors[i]
		p.byName[t.Name] = t
		p.names = append(p.names, t.Name)
	}
	slices.Sort(p.names)
	for _, s := range m.Shards {
		p.shards = append(p.shards, &shard{path: filepath.Join(dir, s.File), entry: s})
	}
	tok := &shard{path: p.TokenizerPath(), entry: m.Tokenizer}
	if err := tok.open(); err != nil {
		return nil, err
	}
	tok.f.Close()
	return p, nil
}

// open opens the file and checks its size and SHA-256 against the manifest.
func (s *shard) open() error {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: missing from the package (the manifest lists it)", s.path)
	}
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil && st.Size() != s.entry.Size {
		err = fmt.Errorf("%s: %d bytes, the manifest says %d (truncated or incomplete?)", s.path, st.Size(), s.entry.Size)
	}
	if err == nil {
		h := sha256.New()
		if _, err = io.Copy(h, io.NewSectionReader(f, 0, s.entry.Size)); err == nil {
			if got := hex.EncodeToString(h.Sum(nil)); got != s.entry.SHA256 {
				err = fmt.Errorf("%s: SHA-256 %s does not match the manifest's %s (corrupted?)", s.path, got, s.entry.SHA256)
			}
		} else {
			err = fmt.Errorf("%s: %v", s.path, err)
		}
	}
	if err != nil {
		f.Close()
		return err
	}
	s.f = f
	return nil
}

// file is the shard's open, verified file.
func (s *shard) file() (*os.File, error) {
	s.once.Do(func() { s.err = s.open() })
	return s.f, s.err
}

// Dir is the package folder.
func (p *Package) Dir() string { return p.dir }

// Manifest is the parsed manifest.json (not to be modified).
func (p *Package) Manifest() *format.Manifest { return p.manifest }

// Config is the model config stored in the manifest.
func (p *Package) Config() model.Config { return p.config }

// TokenizerPath is the package's tokenizer.json (tokenizer.Load(p.Dir()) reads it too).
func (p *Package) TokenizerPath() string { return filepath.Join(p.dir, p.manifest.Tokenizer.File) }

// Names lists every tensor name, sorted.
func (p *Package) Names() []string { return slices.Clone(p.names) }

// Shape is the named tensor's Hugging Face shape.
func (p *Package) Shape(name string) ([]int, bool) {
	t, ok := p.byName[name]
	if !ok {
		return nil, false
	}
	return slices.Clone(t.Shape), true
}

// Tensor is the named tensor's manifest entry.
func (p *Package) Tensor(name string) (format.TensorEntry, bool) {
	t, ok := p.byName[name]
	if !ok {
		return format.TensorEntry{}, false
	}
	e := *t
	e.Shape = slices.Clone(t.Shape)
	return e, true
}

// ReadRaw returns the named tensor's stored bytes: its data and, for q4/q8, its scales
// (nil otherwise), with the binding padding. This is what the GPU uploads, so a test can
// run a kernel and its CPU twin (quant.MatMulQ4, ...) on the same bytes.
func (p *Package) ReadRaw(name string) (data, scales []byte, err error) {
	t, ok := p.byName[name]
	if !ok {
		return nil, nil, fmt.Errorf("%s: package has no tensor %q", p.dir, name)
	}
	s := p.shards[t.Shard]
	f, err := s.file()
	if err != nil {
		return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	read := func(off, n int64) ([]byte, error) {
		b := make([]byte, n)
		if _, err := f.ReadAt(b, off); err != nil {
			return nil, fmt.Errorf("%s: tensor %q: reading %d bytes at %d: %v", s.path, name, n, off, err)
		}
		return b, nil
	}
	if data, err = read(t.Offset, t.Length); err != nil {
		return nil, nil, err
	}
	if t.Encoding.Quantized() {
		if scales, err = read(t.ScalesOffset, t.ScalesLength); err != nil {
			return nil, nil, err
		}
	}
	return data, scales, nil
}

// ReadMatrix returns the named tensor as a model.Matrix [shape[0], rest] in its stored
// encoding, without widening it. Where the shard can be memory-mapped the matrix points
// into the mapping (read-only; pages are read on first touch); otherwise its packed bytes
// are read into the heap.
func (p *Package) ReadMatrix(name string) (model.Matrix, error) {
	t, ok := p.byName[name]
	if !ok {
		return model.Matrix{}, fmt.Errorf("%s: package has no tensor %q", p.dir, name)
	}
	if len(t.Shape) == 0 {
		return model.Matrix{}, fmt.Errorf("%s: tensor %q is a scalar, not a matrix", p.dir, name)
	}
	n := t.Shape[0]
	k := int(t.Numel()) / n
	m := model.Matrix{N: n, K: k, Encoding: t.Encoding, GroupSize: t.GroupSize}
	var data, scales []byte
	if mp := p.shards[t.Shard].mapping(); mp != nil {
		data = mp.data[t.Offset : t.Offset+t.Length]
		if t.Encoding.Quantized() {
			scales = mp.data[t.ScalesOffset : t.ScalesOffset+t.ScalesLength]
		}
		m.Owner = mp
	} else {
		var err error
		if data, scales, err = p.ReadRaw(name); err != nil {
			return model.Matrix{}, err
		}
	}
	// the manifest's lengths are those of the shape and encoding (validated), padded to 4
	switch numel := n * k; t.Encoding {
	case quant.F32:
		m.F32 = asFloat32s(data[:4*numel])
	case quant.F16:
		m.F16 = asUint16s(data[:2*numel])
	case quant.Q4, quant.Q8:
		m.Words = asUint32s(data[:4*(numel/t.Encoding.PerWord())])
		m.Scales = asUint16s(scales[:2*(numel/t.GroupSize)])
	}
	return m, nil
}

// asUint32s, asUint16s and asFloat32s view little-endian bytes as words in place when the
// machine is little-endian and b is aligned (always, for a mapping: parts start at
// multiples of 256); otherwise they decode a copy.
func asUint32s(b []byte) []uint32 { return asWords(b, binary.LittleEndian.Uint32) }

func asUint16s(b []byte) []uint16 { return asWords(b, binary.LittleEndian.Uint16) }

func asFloat32s(b []byte) []float32 {
	return asWords(b, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) })
}

func asWords[T uint16 | uint32 | float32](b []byte, decode func([]byte) T) []T {
	size := int(unsafe.Sizeof(T(0)))
	if nativeLittleEndian && len(b) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(b)))%uintptr(size) == 0 {
		return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/size)
	}
	out := make([]T, len(b)/size)
	for i := range out {
		out[i] = decode(b[i*size:])
	}
	return out
}

// ReadFloat32 decodes the named tensor into dst, whose length must be its element count.
func (p *Package) ReadFloat32(name string, dst []float32) error {
	t, ok := p.byName[name]
	if !ok {
		return fmt.Errorf("%s: package has no tensor %q", p.dir, name)
	}
	if n := t.Numel(); int64(len(dst)) != n {
		return fmt.Errorf("%s: tensor %q has %d elements (shape %v), destination has %d", p.dir, name, n, t.Shape, len(dst))
	}
	data, scales, err := p.ReadRaw(name)
	if err != nil {
		return err
	}
	switch t.Encoding {
	case quant.F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	case quant.F16:
		for i := range dst {
			dst[i] = quant.F16ToFloat32(binary.LittleEndian.Uint16(data[2*i:]))
		}
	case quant.Q4, quant.Q8:
		n, k, g := t.Shape[0], t.Shape[1], t.GroupSize
		words := make([]uint32, len(data)/4)
		for i := range words {
			words[i] = binary.LittleEndian.Uint32(data[4*i:])
		}
		halves := make([]uint16, n*k/g)
		for i := range halves {
			halves[i] = binary.LittleEndian.Uint16(scales[2*i:])
		}
		if t.Encoding == quant.Q4 {
			quant.DequantizeQ4Into(dst, words, halves, n, k, g)
		} else {
			quant.DequantizeQ8Into(dst, words, halves, n, k, g)
		}
	}
	return nil
}

// Verify checks every shard's size and SHA-256 now, and returns the first failure.
func (p *Package) Verify() error {
	for _, s := range p.shards {
		if _, err := s.file(); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the shard files.
func (p *Package) Close() error {
	var first error
	for _, s := range p.shards {
		s.once.Do(func() { s.err = errors.New("package is closed") })
		if s.f != nil {
			if err := s.f.Close(); err != nil && first == nil {
				first = err
			}
			s.f = nil
		}
	}
	return first
}

// OpenModel loads the CPU reference from dir, a package or a Hugging Face checkpoint
// folder, and closes the files. A package's weight matrices stay as stored (mapped where
// the system allows; see ReadMatrix), a checkpoint's are read into float32.
func OpenModel(dir string) (*model.Model, error) {
	if IsPackage(dir) {
		p, err := Open(dir)
		if err != nil {
			return nil, err
		}
		defer p.Close()
		return model.Load(p.Config(), p)
	}
	cfg, err := model.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	ckpt, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	defer ckpt.Close()
	return model.Load(cfg, ckpt)
}
