// Package format is the converted model package as a reader sees it: the manifest types,
// constants and file-name rule of FORMAT.md, ParseManifest (decode and validate) and
// Manifest.Encode. It is all the browser build imports of the package format; the
// converter, calibration and the native reader live in model/pkg, the weight encodings in
// model/quant.
package format

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// File names and format constants of a package (FORMAT.md).
const (
	ManifestFileName  = "manifest.json"
	TokenizerFileName = "tokenizer.json"
	FormatName        = "cogvlm-web-package"
	FormatVersion     = 1
	// Alignment of every tensor part inside its shard: WebGPU's
	// minStorageBufferOffsetAlignment is at most 256, so a shard can be one GPU buffer and
	// each part a binding at its offset.
	Alignment = 256
)

// Manifest is manifest.json: everything needed to fetch, verify and place every tensor.
type Manifest struct {
	Format        string `json:"format"`         // FormatName
	FormatVersion int    `json:"format_version"` // FormatVersion
	// Config is the checkpoint's config.json object, verbatim.
	Config    json.RawMessage `json:"config"`
	Tokenizer FileEntry       `json:"tokenizer"`
	Shards    []FileEntry     `json:"shards"`
	Tensors   []TensorEntry   `json:"tensors"`
}

// FileEntry is a file of the package with its size and SHA-256.
type FileEntry struct {
	File   string `json:"file"`   // name inside the package folder
	Size   int64  `json:"size"`   // bytes
	SHA256 string `json:"sha256"` // lowercase hex
}

// TensorEntry places one tensor. Its data (the values, or qweight for q4/q8) is the
// `length` bytes at `offset` of shard number `shard`; q4 and q8 tensors also have a scales
// array (f16 [n][k/group_size]) at scales_offset in the same shard. Offsets are multiples
// of Alignment and lengths of 4, so each part is a valid WebGPU storage binding.
type TensorEntry struct {
	Name         string         `json:"name"`  // Hugging Face name
	Shape        []int          `json:"shape"` // Hugging Face shape; q4/q8 are [n, k]
	Encoding     quant.Encoding `json:"encoding"`
	GroupSize    int            `json:"group_size,omitempty"` // q4, q8: inputs per scale
	Shard        int            `json:"shard"`                // index into Manifest.Shards
	Offset       int64          `json:"offset"`
	Length       int64          `json:"length"`
	ScalesOffset int64          `json:"scales_offset,omitempty"` // q4, q8
	ScalesLength int64          `json:"scales_length,omitempty"` // q4, q8
}

// Numel is the number of elements.
func (t *TensorEntry) Numel() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// Bytes is the storage of the tensor's parts, alignment padding excluded.
func (t *TensorEntry) Bytes() int64 { return t.Length + t.ScalesLength }

// PartLengths are the byte lengths of a tensor's data and scales (0 without scales) in
// encoding e, each padded to a multiple of 4 so that it is a valid binding.
func PartLengths(e quant.Encoding, shape []int, group int) (data, scales int64) {
	numel := int64(1)
	for _, d := range shape {
		numel *= int64(d)
	}
	switch e {
	case quant.Q4:
		return numel / 2, pad4(numel / int64(group) * 2)
	case quant.Q8:
		return numel, pad4(numel / int64(group) * 2)
	case quant.F16:
		return pad4(numel * 2), 0
	}
	return numel * 4, 0
}

func pad4(n int64) int64 { return (n + 3) &^ 3 }

// AlignUp rounds n up to the next multiple of Alignment: where the next part may start.
func AlignUp(n int64) int64 { return (n + Alignment - 1) &^ (Alignment - 1) }

// MaxFileNameLength bounds a file name of the package (the converter's are 15 bytes).
const MaxFileNameLength = 128

// MaxTokenizerBytes bounds tokenizer.json, which readers hold in memory whole: CogVLM's
// is 1.8 MB. A manifest asking for more is refused before anything is allocated for it.
const MaxTokenizerBytes = 64 << 20

// CheckFileName is the one rule for the names of a package's files (FORMAT.md): 1 to
// MaxFileNameLength characters from [A-Za-z0-9._-], not starting with a dot, and not
// manifest.json in any case. Such a name means the same file on every filesystem and
// resolves to a file inside the package folder as a URL, with nothing to decode: no
// separators (/ or \), no drive or scheme (:), no escapes (%), no query or fragment (? #),
// and never "." or "..". The browser's loader (web/loader.js fileNameProblem) applies the
// same rule; testdata/file_names.json is the table both are tested on.
func CheckFileName(name string) error {
	if name == "" {
		return fmt.Errorf("is empty")
	}
	if len(name) > MaxFileNameLength {
		return fmt.Errorf("is %d bytes long, more than %d", len(name), MaxFileNameLength)
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("has the character %q (allowed: letters, digits, '.', '_', '-')", r)
		}
	}
	if name[0] == '.' {
		return fmt.Errorf("starts with a dot")
	}
	if strings.EqualFold(name, ManifestFileName) {
		return fmt.Errorf("is the name of the manifest itself")
	}
	return nil
}

// maxNumel bounds one tensor so that byte counts cannot overflow; CogVLM-17B's largest
// has 131 M elements.
const maxNumel = 1 << 40

// ParseManifest decodes and validates manifest.json: the format and version, the config
// (a valid CogVLM config), file names (plain names inside the package), hashes, and every
// tensor's encoding, shape, group size and parts (sizes match the shape, aligned, inside
// their shard, not overlapping). Errors name the field or tensor at fault.
func ParseManifest(data []byte) (*Manifest, model.Config, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, model.Config{}, fmt.Errorf("bad JSON: %v", err)
	}
	if m.Format != FormatName {
		return nil, model.Config{}, fmt.Errorf("format %q is not %q", m.Format, FormatName)
	}
	if m.FormatVersion != FormatVersion {
		return nil, model.Config{}, fmt.Errorf("format_version %d is not supported (this reader knows version %d)", m.FormatVersion, FormatVersion)
	}
	var cfg model.Config
	if len(m.Config) == 0 {
		return nil, model.Config{}, fmt.Errorf("config is missing")
	}
	if err := json.Unmarshal(m.Config, &cfg); err != nil {
		return nil, model.Config{}, fmt.Errorf("config: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, model.Config{}, fmt.Errorf("config: %v", err)
	}
	if err := m.validate(); err != nil {
		return nil, model.Config{}, err
	}
	return &m, cfg, nil
}

func (m *Manifest) validate() error {
	files := map[string]string{} // lower-case name → which entry has it
	checkFile := func(what string, f FileEntry) error {
		if err := CheckFileName(f.File); err != nil {
			return fmt.Errorf("%s file %q is not a plain file name inside the package: it %v", what, f.File, err)
		}
		// Ignoring case: on macOS and Windows two such names are one file.
		if prev, dup := files[strings.ToLower(f.File)]; dup {
			return fmt.Errorf("%s file %q is also %s (names must differ, ignoring case)", what, f.File, prev)
		}
		files[strings.ToLower(f.File)] = what
		if f.Size < 0 {
			return fmt.Errorf("%s %s: negative size %d", what, f.File, f.Size)
		}
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != 32 || strings.ToLower(f.SHA256) != f.SHA256 {
			return fmt.Errorf("%s %s: sha256 %q is not 64 lowercase hex digits", what, f.File, f.SHA256)
		}
		return nil
	}
	if err := checkFile("tokenizer", m.Tokenizer); err != nil {
		return err
	}
	if m.Tokenizer.Size > MaxTokenizerBytes {
		return fmt.Errorf("tokenizer %s: %d bytes, more than the %d a tokenizer may have", m.Tokenizer.File, m.Tokenizer.Size, MaxTokenizerBytes)
	}
	if len(m.Shards) == 0 {
		return fmt.Errorf("no shards")
	}
	for i, s := range m.Shards {
		if err := checkFile(fmt.Sprintf("shard %d", i), s); err != nil {
			return err
		}
	}
	type span struct {
		name       string
		begin, end int64
	}
	spans := make([][]span, len(m.Shards))
	names := map[string]bool{}
	for i := range m.Tensors {
		t := &m.Tensors[i]
		if t.Name == "" {
			return fmt.Errorf("tensor %d has no name", i)
		}
		if names[t.Name] {
			return fmt.Errorf("tensor %q is listed twice", t.Name)
		}
		names[t.Name] = true
		if err := t.validate(); err != nil {
			return fmt.Errorf("tensor %q: %v", t.Name, err)
		}
		if t.Shard < 0 || t.Shard >= len(m.Shards) {
			return fmt.Errorf("tensor %q: shard %d does not exist (%d shards)", t.Name, t.Shard, len(m.Shards))
		}
		shard := m.Shards[t.Shard]
		parts := []struct {
			what        string
			off, length int64
		}{{"data", t.Offset, t.Length}}
		if t.Encoding.Quantized() {
			parts = append(parts, struct {
				what        string
				off, length int64
			}{"scales", t.ScalesOffset, t.ScalesLength})
		}
		for _, p := range parts {
			if p.off < 0 || p.off%Alignment != 0 {
				return fmt.Errorf("tensor %q: %s offset %d is not a multiple of %d", t.Name, p.what, p.off, Alignment)
			}
			if p.off > shard.Size-p.length {
				return fmt.Errorf("tensor %q: %s [%d, %d) runs past the end of shard %s (%d bytes)", t.Name, p.what, p.off, p.off+p.length, shard.File, shard.Size)
			}
			spans[t.Shard] = append(spans[t.Shard], span{t.Name + " " + p.what, p.off, p.off + p.length})
		}
	}
	for i, ss := range spans {
		slices.SortFunc(ss, func(a, b span) int { return cmp.Compare(a.begin, b.begin) })
		for j := 1; j < len(ss); j++ {
			if ss[j].begin < ss[j-1].end {
				return fmt.Errorf("shard %s: %s [%d, %d) overlaps %s [%d, %d)", m.Shards[i].File,
					ss[j].name, ss[j].begin, ss[j].end, ss[j-1].name, ss[j-1].begin, ss[j-1].end)
			}
		}
	}
	return nil
}

// validate checks what a tensor entry says about itself: encoding, shape, group size and
// the part lengths they imply.
func (t *TensorEntry) validate() error {
	if _, err := quant.ParseEncoding(string(t.Encoding)); err != nil {
		return err
	}
	numel := int64(1)
	for _, d := range t.Shape {
		if d <= 0 || numel > maxNumel/int64(d) {
			return fmt.Errorf("shape %v: dimensions must be positive, at most %d elements in all", t.Shape, int64(maxNumel))
		}
		numel *= int64(d)
	}
	if t.Encoding.Quantized() {
		if len(t.Shape) != 2 {
			return fmt.Errorf("%s needs a 2-D [n, k] shape, have %v", t.Encoding, t.Shape)
		}
		if err := quant.CheckGroups(t.Encoding, t.Shape[0], t.Shape[1], t.GroupSize); err != nil {
			return err
		}
	} else if t.GroupSize != 0 || t.ScalesOffset != 0 || t.ScalesLength != 0 {
		return fmt.Errorf("%s has no groups or scales, but group_size %d, scales [%d, +%d) are given", t.Encoding, t.GroupSize, t.ScalesOffset, t.ScalesLength)
	}
	data, scales := PartLengths(t.Encoding, t.Shape, t.GroupSize)
	if t.Length != data || t.ScalesLength != scales {
		return fmt.Errorf("%s %v (group %d) takes %d data and %d scale bytes, entry says %d and %d",
			t.Encoding, t.Shape, t.GroupSize, data, scales, t.Length, t.ScalesLength)
	}
	return nil
}

// EncodingStats sums the tensors of one encoding.
type EncodingStats struct {
	Tensors int
	Params  int64 // elements
	Bytes   int64 // data and scales, alignment padding excluded
}

// BitsPerWeight is the storage per element, scales included.
func (s EncodingStats) BitsPerWeight() float64 {
	if s.Params == 0 {
		return math.NaN()
	}
	return float64(8*s.Bytes) / float64(s.Params)
}

// Stats sums the package's tensors per encoding and in total (key "").
func (m *Manifest) Stats() map[quant.Encoding]EncodingStats {
	stats := map[quant.Encoding]EncodingStats{}
	for i := range m.Tensors {
		t := &m.Tensors[i]
		for _, key := range []quant.Encoding{t.Encoding, ""} {
			s := stats[key]
			s.Tensors++
			s.Params += t.Numel()
			s.Bytes += t.Bytes()
			stats[key] = s
		}
	}
	return stats
}

// Encode writes manifest.json for people as well as programs: the config and every shard
// and tensor on one line each, so a diff of two packages reads line by line.
func (m *Manifest) Encode() ([]byte, error) {
	var b bytes.Buffer
	var config bytes.Buffer
	if err := json.Compact(&config, m.Config); err != nil {
		return nil, fmt.Errorf("config: %v", err)
	}
	line := func(indent, prefix string, v any, last bool) error {
		js, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.WriteString(indent + prefix)
		b.Write(js)
		if !last {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
		return nil
	}
	b.WriteString("{\n")
	for _, f := range []struct {
		key string
		v   any
	}{{"format", m.Format}, {"format_version", m.FormatVersion}, {"config", json.RawMessage(config.Bytes())}, {"tokenizer", m.Tokenizer}} {
		if err := line("  ", `"`+f.key+`": `, f.v, false); err != nil {
			return nil, err
		}
	}
	for _, list := range []struct {
		key   string
		n     int
		item  func(int) any
		final bool
	}{
		{"shards", len(m.Shards), func(i int) any { return m.Shards[i] }, false},
		{"tensors", len(m.Tensors), func(i int) any { return m.Tensors[i] }, true},
	} {
		b.WriteString(`  "` + list.key + `": [` + "\n")
		for i := range list.n {
			if err := line("    ", "", list.item(i), i == list.n-1); err != nil {
				return nil, err
			}
		}
		b.WriteString("  ]")
		if !list.final {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}
