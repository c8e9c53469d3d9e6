package pkg

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/format"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
)

// Defaults of ConvertOptions.
const (
	// DefaultShardBytes is the shard size the converter aims for: small enough to
	// stream, verify and retry one at a time, large enough that a 10 GB package is a few
	// hundred requests.
	DefaultShardBytes = 32 << 20
	// DefaultMaxBindingBytes is WebGPU's default maxStorageBufferBindingSize, the limit
	// every adapter supports without asking for more. CogVLM's largest part at q4, the
	// 32000×4096 embedding, is 64 MB.
	DefaultMaxBindingBytes = 128 << 20
)

// ConvertOptions are Convert's settings; the zero value converts to the default q4
// package.
type ConvertOptions struct {
	// Quant is the encoding of the large matrices (q4, q8, f16 or f32); "" means q4. It
	// feeds DefaultPolicy.
	Quant quant.Encoding
	// Policy picks each tensor's encoding; nil means DefaultPolicy(Quant).
	Policy Policy
	// GroupSize is the number of inputs per scale of q4/q8 matrices. 0 means
	// quant.DefaultGroupSize, or for a matrix whose input dimension K it does not divide,
	// the largest smaller multiple of the values per word (8 for q4, 4 for q8) that does
	// (the manifest records each tensor's size). A positive value is used as is, and a
	// matrix whose K it does not divide is an error naming the tensor.
	GroupSize int
	// ShardBytes is the target shard size; 0 means DefaultShardBytes. A tensor never
	// spans two shards: one larger than the target gets a shard of its own.
	ShardBytes int64
	// MaxBindingBytes bounds each tensor part (data or scales), the size of one WebGPU
	// binding; 0 means DefaultMaxBindingBytes.
	MaxBindingBytes int64
	// Force replaces a non-empty output folder; without it Convert refuses to.
	Force bool
	// Progress, when set, is called with the checkpoint bytes converted so far and in
	// total: once before the first tensor and after each one.
	Progress func(done, total int64)
	// Context cancels the conversion between tensors (and between calibration stages);
	// nil means context.Background().
	Context context.Context
	// Calibrate quantizes the q4 tensors with GPTQ (gptq.QuantizeQ4Into) on the
	// activations of generated calibration prompts (calibrate.go) instead of rounding each
	// weight to nearest: the levels and scales minimise each layer's output error rather
	// than its weight error. The package format is the same. It needs the whole model in
	// float32 in memory and runs the calibration prompts through it once per stage, before
	// anything is written, so it is refused for models over MaxCalibrationParams; without
	// it conversion streams tensor by tensor. A policy that gives no q4 tensor is an
	// error. FORMAT.md has the measurements and the cost.
	Calibrate bool
}

// Convert turns the Hugging Face CogVLM checkpoint in folder in into a package in folder
// out (FORMAT.md). It first checks everything it can without writing: config.json (a
// CogVLM config), the tensor list against the config (missing, unexpected and
// wrongly-shaped tensors all listed; the per-layer rotary inv_freq buffers of the
// published checkpoints are checked against the config and dropped, present or not),
// dtypes (BF16, F16, F32), the tokenizer, every
// tensor's encoding and group size, and the binding limit. Then it streams the weights
// tensor by tensor (memory: a few buffers the size of the largest tensor) into
// out.partial-XXXX next to out, writes manifest.json last, fsyncs, and renames the folder
// into place. A failure, cancellation or crash never leaves a folder named out that looks
// complete; a crash can leave the .partial-XXXX folder behind, which the next conversion to
// out removes (partial.go). A cancellation's error says so, with the context's cause (the
// signal). A non-empty out is replaced
// only with opts.Force. With opts.Calibrate the q4 tensors are quantized with GPTQ in
// memory, after the checks and before the first write (ConvertOptions.Calibrate).
//
// The CLI's `cogvlm convert --in HF_DIR --out PKG_DIR [--quant q4|q8|f16|f32]` is
// Convert(in, out, ConvertOptions{Quant: quant, Progress: bar.Update, Context: ctx}).
func Convert(in, out string, opts ConvertOptions) (err error) {
	out = filepath.Clean(out)
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if err := opts.setDefaults(); err != nil {
		return err
	}
	if err := checkOverlap(in, out); err != nil {
		return err
	}
	if err := checkOutput(out, opts.Force); err != nil {
		return err
	}
	removeStalePartials(out)
	defer func() {
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			err = interruptedError{out: out, cause: context.Cause(ctx), err: err}
		}
	}()
	c, err := prepare(in, opts)
	if err != nil {
		return err
	}
	defer c.ckpt.Close()
	if opts.Calibrate {
		if err := c.calibrate(ctx); err != nil {
			return err
		}
	}

	work, err := newPartial(out)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			work.remove()
		} else {
			work.installed(out)
		}
	}()
	partial := work.path
	if err := c.writeTokenizer(partial); err != nil {
		return err
	}
	if err := c.writeShards(ctx, partial, opts.Progress); err != nil {
		return err
	}
	manifest, err := c.manifest.Encode()
	if err != nil {
		return err
	}
	if _, err := writeFile(filepath.Join(partial, format.ManifestFileName), func(w io.Writer) error {
		_, err := w.Write(manifest)
		return err
	}); err != nil {
		return err
	}
	if err := syncDir(partial); err != nil {
		return err
	}
	return install(partial, out, opts.Force)
}

func (o *ConvertOptions) setDefaults() error {
	if o.Quant == "" {
		o.Quant = quant.Q4
	}
	if _, err := quant.ParseEncoding(string(o.Quant)); err != nil {
		return fmt.Errorf("quant: %v", err)
	}
	if o.Policy == nil {
		o.Policy = DefaultPolicy(o.Quant)
	}
	if o.ShardBytes == 0 {
		o.ShardBytes = DefaultShardBytes
	}
	if o.MaxBindingBytes == 0 {
		o.MaxBindingBytes = DefaultMaxBindingBytes
	}
	switch {
	case o.GroupSize < 0:
		return fmt.Errorf("group size %d is negative", o.GroupSize)
	case o.ShardBytes < 0:
		return fmt.Errorf("shard size %d is negative", o.ShardBytes)
	case o.MaxBindingBytes < 0:
		return fmt.Errorf("binding limit %d is negative", o.MaxBindingBytes)
	}
	return nil
}

// checkOverlap refuses an output folder that holds the input: replacing it would delete
// the checkpoint being read.
func checkOverlap(in, out string) error {
	absIn, err1 := canonical(in)
	absOut, err2 := canonical(out)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if rel, err := filepath.Rel(absOut, absIn); err == nil && filepath.IsLocal(rel) || absIn == absOut {
		return fmt.Errorf("output %s would contain the input %s: choose another folder", out, in)
	}
	return nil
}

// checkOutput refuses an output Convert could not install: a non-folder, or a non-empty
// folder without force.
func checkOutput(out string, force bool) error {
	fi, err := os.Lstat(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("output %s exists and is not a folder", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	if len(entries) > 0 && !force {
		return fmt.Errorf("output %s is not empty (%d entries); pass Force (--force) to replace it", out, len(entries))
	}
	return nil
}

// canonical is path made absolute with symlinks resolved as far as they exist.
func canonical(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real, nil
	}
	if real, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(real, filepath.Base(abs)), nil
	}
	return abs, nil
}

// conversion is a checked plan: the open checkpoint and the manifest with every tensor
// placed (hashes are filled in as files are written).
type conversion struct {
	in            string // the checkpoint, as messages name it
	ckpt          *safetensors.Checkpoint
	tokenizer     *tokenizer.Tokenizer // loaded from tokenizer.model when there is no tokenizer.json
	tokenizerJSON []byte               // the tokenizer.json to copy, or nil
	tok           *tokenizer.Tokenizer // the tokenizer, either way
	cfg           model.Config
	manifest      format.Manifest
	inputBytes    []int64 // checkpoint bytes of each tensor, in manifest order
	totalBytes    int64
	gptq          map[string]q4Tensor // with Calibrate: the q4 tensors, already quantized
}

// prepare does every check that needs no writing and plans the package.
func prepare(in string, opts ConvertOptions) (*conversion, error) {
	return prepareFolder(dirFolder(in), opts)
}

// prepareFolder is prepare for a checkpoint folder anywhere (folder.go).
func prepareFolder(src Folder, opts ConvertOptions) (_ *conversion, err error) {
	in := src.Name()
	configPath := src.Path("config.json")
	rawConfig, err := src.ReadFile("config.json")
	if err != nil {
		return nil, err
	}
	cfg, err := model.ParseConfig(rawConfig, configPath)
	if err != nil {
		return nil, err
	}
	specs, err := model.TensorSpecs(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", configPath, err)
	}
	ckpt, err := src.Checkpoint()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			ckpt.Close()
		}
	}()
	c := &conversion{in: in, ckpt: ckpt, cfg: cfg}
	c.manifest = format.Manifest{Format: format.FormatName, FormatVersion: format.FormatVersion, Config: rawConfig}
	if err := checkTensors(in, cfg, specs, c.ckpt); err != nil {
		return nil, err
	}
	if err := c.findTokenizer(src, cfg); err != nil {
		return nil, err
	}
	for _, s := range specs {
		info, _, _ := c.ckpt.Info(s.Name)
		c.inputBytes = append(c.inputBytes, info.Size)
		c.totalBytes += info.Size
	}
	if c.manifest.Tensors, c.manifest.Shards, err = plan(specs, opts); err != nil {
		return nil, err
	}
	return c, nil
}

// plan gives every tensor its encoding, group size and place, and returns the shards
// with their sizes (hashes are left empty). opts has its defaults set.
func plan(specs []model.TensorSpec, opts ConvertOptions) ([]format.TensorEntry, []format.FileEntry, error) {
	tensors := make([]format.TensorEntry, len(specs))
	for i, s := range specs {
		var err error
		if tensors[i], err = planTensor(s, opts); err != nil {
			return nil, nil, err
		}
	}
	return tensors, layout(tensors, opts.ShardBytes), nil
}

// checkTensors compares the checkpoint's tensors with what the config implies and lists
// every mismatch in one error; then it checks that every dtype converts to float32.
func checkTensors(in string, cfg model.Config, specs []model.TensorSpec, ckpt *safetensors.Checkpoint) error {
	var missing, shapes, dtypes []string
	expected := map[string]bool{}
	for _, s := range specs {
		expected[s.Name] = true
		info, _, ok := ckpt.Info(s.Name)
		switch {
		case !ok:
			missing = append(missing, s.Name)
		case !slices.Equal(info.Shape, s.Shape):
			shapes = append(shapes, fmt.Sprintf("%s %v (want %v)", s.Name, info.Shape, s.Shape))
		case info.DType != safetensors.BF16 && info.DType != safetensors.F16 && info.DType != safetensors.F32:
			dtypes = append(dtypes, fmt.Sprintf("%s %s", s.Name, info.DType))
		}
	}
	var unexpected []string
	for _, name := range ckpt.Names() {
		if expected[name] {
			continue
		}
		if _, ok := model.RotaryInvFreqLayer(name); ok {
			// The published checkpoints save RoPE's inv_freq per layer: checked, then
			// dropped (the package computes RoPE from the config).
			if err := checkRotary(cfg, name, ckpt); err != nil {
				return fmt.Errorf("%s: checkpoint cannot be converted: %v", in, err)
			}
			continue
		}
		unexpected = append(unexpected, name)
	}
	var parts []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"missing", missing}, {"unexpected", unexpected}, {"wrong shape", shapes}, {"unsupported dtype (want BF16, F16 or F32)", dtypes}} {
		if len(p.names) > 0 {
			slices.Sort(p.names)
			parts = append(parts, fmt.Sprintf("%d %s: %s", len(p.names), p.what, listNames(p.names)))
		}
	}
	if len(parts) > 0 {
		return fmt.Errorf("%s: checkpoint cannot be converted: %s", in, strings.Join(parts, "; "))
	}
	return nil
}

// checkRotary checks a saved rotary inv_freq buffer against cfg (model.CheckRotaryInvFreq);
// its size is checked before it is read.
func checkRotary(cfg model.Config, name string, ckpt *safetensors.Checkpoint) error {
	info, _, _ := ckpt.Info(name)
	if !model.RotaryShapeOK(cfg, info.Shape) {
		return model.CheckRotaryInvFreq(cfg, name, info.Shape, nil)
	}
	if info.DType != safetensors.BF16 && info.DType != safetensors.F16 && info.DType != safetensors.F32 {
		return fmt.Errorf("tensor %q: unsupported dtype %s (want BF16, F16 or F32)", name, info.DType)
	}
	values := make([]float32, info.Shape[0])
	if err := ckpt.ReadFloat32(name, values); err != nil {
		return err
	}
	return model.CheckRotaryInvFreq(cfg, name, info.Shape, values)
}

// maxListedNames caps each list of a mismatch error: the first few already say what is
// wrong with a checkpoint for another model.
const maxListedNames = 10

func listNames(names []string) string {
	if len(names) <= maxListedNames {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, … and %d more", strings.Join(names[:maxListedNames], ", "), len(names)-maxListedNames)
}

// findTokenizer picks and loads the tokenizer: tokenizer.json is copied verbatim,
// tokenizer.model (the SentencePiece protobuf) is converted; either must load.
func (c *conversion) findTokenizer(src Folder, cfg model.Config) error {
	const jsonName, modelName = "tokenizer.json", "tokenizer.model"
	var tok *tokenizer.Tokenizer
	data, err := src.ReadFile(jsonName)
	switch {
	case err == nil:
		c.tokenizerJSON = data
		tok, err = tokenizer.ParseJSONFile(data, src.Path(jsonName))
	case errors.Is(err, fs.ErrNotExist):
		if data, err = src.ReadFile(modelName); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: no tokenizer.json or tokenizer.model", c.in)
		} else if err == nil {
			tok, err = tokenizer.ParseModel(data, src.Path(modelName))
			c.tokenizer = tok
		} else {
			err = fmt.Errorf("tokenizer: %w", err)
		}
	default:
		err = fmt.Errorf("tokenizer: %w", err)
	}
	if err != nil {
		return err
	}
	if tok.VocabSize() > cfg.VocabSize {
		return fmt.Errorf("%s: the tokenizer has %d pieces, more than vocab_size %d", c.in, tok.VocabSize(), cfg.VocabSize)
	}
	c.tok = tok
	return nil
}

// planTensor picks a tensor's encoding and group size and checks that its parts are
// valid bindings.
func planTensor(s model.TensorSpec, opts ConvertOptions) (format.TensorEntry, error) {
	t := format.TensorEntry{Name: s.Name, Shape: s.Shape, Encoding: opts.Policy(s.Name, s.Shape)}
	if _, err := quant.ParseEncoding(string(t.Encoding)); err != nil {
		return t, fmt.Errorf("tensor %q: policy: %v", s.Name, err)
	}
	if t.Encoding.Quantized() {
		if len(s.Shape) != 2 {
			return t, fmt.Errorf("tensor %q %v: %s needs a 2-D [n, k] weight", s.Name, s.Shape, t.Encoding)
		}
		n, k := s.Shape[0], s.Shape[1]
		t.GroupSize = groupSize(t.Encoding, k, opts.GroupSize)
		if err := quant.CheckGroups(t.Encoding, n, k, t.GroupSize); err != nil {
			if opts.GroupSize == 0 {
				err = fmt.Errorf("%v (nor of any smaller multiple of %d)", err, t.Encoding.PerWord())
			}
			return t, fmt.Errorf("tensor %q %v: %v", s.Name, s.Shape, err)
		}
	}
	t.Length, t.ScalesLength = format.PartLengths(t.Encoding, t.Shape, t.GroupSize)
	if part := max(t.Length, t.ScalesLength); part > opts.MaxBindingBytes {
		return t, fmt.Errorf("tensor %q %v in %s takes %d bytes, over the %d-byte binding limit: choose a smaller encoding",
			s.Name, s.Shape, t.Encoding, part, opts.MaxBindingBytes)
	}
	return t, nil
}

// groupSize is requested when given, else the default group size, stepped down by the
// values per word until it divides k (CheckGroups reports a k nothing divides).
func groupSize(e quant.Encoding, k, requested int) int {
	if requested > 0 {
		return requested
	}
	for g := quant.DefaultGroupSize; g >= e.PerWord(); g -= e.PerWord() {
		if k%g == 0 {
			return g
		}
	}
	return quant.DefaultGroupSize
}

// layout places the tensors, in order, into shards of about target bytes: each part at
// the next Alignment boundary, a tensor's parts together in one shard, a new shard when
// the tensor would overflow a non-empty one. It returns the shards with their sizes.
func layout(tensors []format.TensorEntry, target int64) []format.FileEntry {
	var shards []format.FileEntry
	var size int64 // of the current shard
	for i := range tensors {
		t := &tensors[i]
		span := format.AlignUp(t.Length) + t.ScalesLength
		if len(shards) == 0 || size > 0 && format.AlignUp(size)+span > target {
			shards = append(shards, format.FileEntry{File: fmt.Sprintf("shard-%05d.bin", len(shards))})
			size = 0
		}
		t.Shard = len(shards) - 1
		t.Offset = format.AlignUp(size)
		size = t.Offset + t.Length
		if t.Encoding.Quantized() {
			t.ScalesOffset = format.AlignUp(size)
			size = t.ScalesOffset + t.ScalesLength
		}
		shards[t.Shard].Size = size
	}
	return shards
}

func (c *conversion) writeTokenizer(dir string) error {
	entry, err := writeFile(filepath.Join(dir, format.TokenizerFileName), c.fillTokenizer)
	c.manifest.Tokenizer = entry
	return err
}

// fillTokenizer writes tokenizer.json: the checkpoint's, or the one converted from its
// tokenizer.model.
func (c *conversion) fillTokenizer(w io.Writer) error {
	if c.tokenizer != nil {
		return c.tokenizer.WriteJSON(w)
	}
	_, err := w.Write(c.tokenizerJSON)
	return err
}

// writeShards converts every tensor into its shard, shard by shard in manifest order,
// checking for cancellation between tensors.
func (c *conversion) writeShards(ctx context.Context, dir string, progress func(done, total int64)) error {
	var done int64
	if progress != nil {
		progress(0, c.totalBytes)
	}
	var enc encoder
	for index, shard := range c.manifest.Shards {
		w, err := createHashed(filepath.Join(dir, shard.File))
		if err != nil {
			return err
		}
		err = c.writeShard(ctx, index, &w.hashWriter, &enc, 0, func(i int) {
			done += c.inputBytes[i]
			if progress != nil {
				progress(done, c.totalBytes)
			}
		})
		if err != nil {
			w.f.Close()
			return err
		}
		entry, err := w.close()
		if err != nil {
			return err
		}
		if err := c.checkShard(index, entry); err != nil {
			return err
		}
	}
	return nil
}

// writeShard converts the tensors of shard number index into w, each in chunks of rows of
// about chunkBytes checkpoint bytes (0: whole tensors), and calls done(i) after tensor i.
// It checks for cancellation between tensors. Shards are independent: the browser's
// converter writes several at once.
func (c *conversion) writeShard(ctx context.Context, index int, w *hashWriter, enc *encoder, chunkBytes int64, done func(i int)) error {
	for i := range c.manifest.Tensors {
		t := &c.manifest.Tensors[i]
		if t.Shard != index {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.writeTensor(w, enc, t, chunkBytes); err != nil {
			return err
		}
		done(i)
	}
	return nil
}

// writeTensor converts one tensor into w: its data part chunk by chunk of rows (q4, q8,
// f16 and f32 all encode each row on its own, so the bytes are those of the whole tensor
// at once), then its scales.
func (c *conversion) writeTensor(w *hashWriter, enc *encoder, t *format.TensorEntry, chunkBytes int64) error {
	info, _, _ := c.ckpt.Info(t.Name)
	pre := c.gptq[t.Name]
	n, k := rowsOf(t.Shape)
	step := n
	if chunkBytes > 0 && pre.qweight == nil {
		step = int(min(int64(n), max(1, chunkBytes/(int64(k)*int64(info.DType.Size())))))
	}
	rowBytes := rowDataBytes(t.Encoding, k)
	var rowScales int // bytes of scales per row
	if t.Encoding.Quantized() {
		rowScales = 2 * k / t.GroupSize
		enc.tensorScales = grow(enc.tensorScales, int(t.ScalesLength))
		clear(enc.tensorScales) // the padding after an odd number of scales
	}
	for r0 := 0; r0 < n; r0 += step {
		r1 := min(n, r0+step)
		data, scales, err := enc.encodeRows(c.ckpt, info, t, pre, r0, r1, chunkBytes > 0)
		if err != nil {
			return fmt.Errorf("%s: tensor %q: %v", c.in, t.Name, err)
		}
		if err := w.writeAt(t.Offset+int64(r0)*rowBytes, data); err != nil {
			return err
		}
		copy(enc.tensorScales[r0*rowScales:], scales)
	}
	if err := w.writeAt(t.Offset+t.Length, nil); err != nil { // f16's padding to 4 bytes
		return err
	}
	if t.Encoding.Quantized() {
		return w.writeAt(t.ScalesOffset, enc.tensorScales)
	}
	return nil
}

// rowsOf views a tensor as n rows of k values: [n, k] as it is, a vector as one row, a
// 4-D convolution weight as its output channels.
func rowsOf(shape []int) (n, k int) {
	if len(shape) == 0 {
		return 1, 1
	}
	n, k = shape[0], 1
	for _, d := range shape[1:] {
		k *= d
	}
	if len(shape) == 1 {
		n, k = 1, shape[0]
	}
	return n, k
}

// rowDataBytes is the size of the data part of one row of k values.
func rowDataBytes(e quant.Encoding, k int) int64 {
	switch e {
	case quant.Q4:
		return int64(k) / 2
	case quant.Q8:
		return int64(k)
	case quant.F16:
		return 2 * int64(k)
	}
	return 4 * int64(k)
}

// checkShard records a written shard's entry, whose size layout planned.
func (c *conversion) checkShard(index int, entry format.FileEntry) error {
	if want := c.manifest.Shards[index]; entry.Size != want.Size || entry.File != want.File {
		return fmt.Errorf("%s: wrote %d bytes, planned %d", entry.File, entry.Size, want.Size) // a bug in layout, not bad input
	}
	c.manifest.Shards[index] = entry
	return nil
}

// encoder converts tensors into their encoded bytes, reusing its buffers: after the
// largest tensor, conversion allocates nothing more.
type encoder struct {
	raw          []byte // checkpoint bytes of a row chunk
	values       []float32
	words        []uint32
	halves       []uint16
	data         []byte
	scales       []byte
	tensorScales []byte // the scales of a whole tensor, gathered chunk by chunk
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// encodeRows reads rows [r0, r1) of a tensor from the checkpoint (ranged: in one read of
// their bytes; else the whole tensor, r0 = 0 and r1 = n, with ReadFloat32) and encodes
// them, or for a q4 tensor that calibration quantized (pre.qweight not nil, whole) packs
// pre. It returns the rows' data bytes (without f16's padding) and scale bytes, valid
// until the next call. An error names the element or row in the whole tensor.
func (e *encoder) encodeRows(src *safetensors.Checkpoint, info safetensors.TensorInfo, t *format.TensorEntry, pre q4Tensor, r0, r1 int, ranged bool) (data, scales []byte, err error) {
	_, k := rowsOf(t.Shape)
	numel := (r1 - r0) * k
	if pre.qweight == nil {
		e.values = grow(e.values, numel)
		if ranged {
			elem := int64(info.DType.Size())
			e.raw = grow(e.raw, numel*int(elem))
			if err := src.ReadRawAt(t.Name, int64(r0)*int64(k)*elem, e.raw); err != nil {
				return nil, nil, err
			}
			safetensors.DecodeFloat32(info.DType, e.raw, e.values)
		} else if err := src.ReadFloat32(t.Name, e.values); err != nil {
			return nil, nil, err
		}
	}
	e.data = grow(e.data, int(int64(r1-r0)*rowDataBytes(t.Encoding, k)))
	switch t.Encoding {
	case quant.F32:
		for i, v := range e.values {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, nil, fmt.Errorf("element %d is %g", r0*k+i, v)
			}
			binary.LittleEndian.PutUint32(e.data[4*i:], math.Float32bits(v))
		}
	case quant.F16:
		e.halves = grow(e.halves, numel)
		if err := quant.EncodeF16(e.halves, e.values); err != nil {
			if r0 > 0 {
				err = fmt.Errorf("from element %d: %v", r0*k, err)
			}
			return nil, nil, err
		}
		putHalves(e.data, e.halves)
	case quant.Q4, quant.Q8:
		n, g := r1-r0, t.GroupSize
		e.words = grow(e.words, len(e.data)/4)
		e.halves = grow(e.halves, n*k/g)
		e.scales = grow(e.scales, 2*len(e.halves))
		quantize := quant.QuantizeQ4Into
		if t.Encoding == quant.Q8 {
			quantize = quant.QuantizeQ8Into
		}
		if pre.qweight != nil {
			copy(e.words, pre.qweight)
			copy(e.halves, pre.scales)
		} else if err := quantize(e.words, e.halves, e.values, n, k, g); err != nil {
			if r0 > 0 {
				err = fmt.Errorf("rows from %d: %v", r0, err)
			}
			return nil, nil, err
		}
		for i, w := range e.words {
			binary.LittleEndian.PutUint32(e.data[4*i:], w)
		}
		putHalves(e.scales, e.halves)
	}
	return e.data, e.scales, nil
}

func putHalves(dst []byte, halves []uint16) {
	for i, h := range halves {
		binary.LittleEndian.PutUint16(dst[2*i:], h)
	}
}

// hashWriter writes a file of the package sequentially to out, hashing and counting as
// it goes.
type hashWriter struct {
	path string // in messages
	out  io.Writer
	hash hash.Hash
	n    int64
}

// newHashWriter writes the package file named path to out.
func newHashWriter(path string, out io.Writer) *hashWriter {
	h := sha256.New()
	return &hashWriter{path: path, out: io.MultiWriter(out, h), hash: h}
}

func (w *hashWriter) Write(p []byte) (int, error) {
	n, err := w.out.Write(p)
	w.n += int64(n)
	if err != nil {
		err = fmt.Errorf("%s: %v", w.path, err)
	}
	return n, err
}

// entry is the manifest's entry of what was written.
func (w *hashWriter) entry() format.FileEntry {
	return format.FileEntry{File: filepath.Base(w.path), Size: w.n, SHA256: hex.EncodeToString(w.hash.Sum(nil))}
}

// hashedFile writes a new file of the package.
type hashedFile struct {
	hashWriter
	f   *os.File
	buf *bufio.Writer
}

func createHashed(path string) (*hashedFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	buf := bufio.NewWriterSize(f, 1<<20)
	return &hashedFile{hashWriter: *newHashWriter(path, buf), f: f, buf: buf}, nil
}

var zeros [format.Alignment]byte

// writeAt writes p at offset off, zero-filling from the current end (off is never behind
// it: layout places parts in order).
func (w *hashWriter) writeAt(off int64, p []byte) error {
	for w.n < off {
		if _, err := w.Write(zeros[:min(off-w.n, format.Alignment)]); err != nil {
			return err
		}
	}
	_, err := w.Write(p)
	return err
}

// close flushes, fsyncs and closes the file and returns its entry.
func (w *hashedFile) close() (format.FileEntry, error) {
	err := w.buf.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return format.FileEntry{}, fmt.Errorf("%s: %v", w.path, err)
	}
	return w.entry(), nil
}

// writeFile creates path with what fill writes, fsynced, and returns its entry.
func writeFile(path string, fill func(io.Writer) error) (format.FileEntry, error) {
	w, err := createHashed(path)
	if err != nil {
		return format.FileEntry{}, err
	}
	if err := fill(w); err != nil {
		w.f.Close()
		return format.FileEntry{}, fmt.Errorf("%s: %v", path, err)
	}
	return w.close()
}

// syncDir fsyncs a folder so that the names created in it survive a crash. Some
// systems cannot sync a folder; there the rename is as durable as the OS makes it.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("%s: %v", dir, err)
	}
	return nil
}

// install renames the finished partial folder to out. An existing empty out is removed
// first; a non-empty one (allowed by force) is first moved aside and deleted once the
// new package is in place, so out is always either the old or the new package.
func install(partial, out string, force bool) error {
	if err := checkOutput(out, force); err != nil { // again: the folder may have changed meanwhile
		return err
	}
	var old string
	if fi, err := os.Lstat(out); err == nil && fi.IsDir() {
		old = strings.Replace(partial, ".partial-", ".replaced-", 1)
		if err := os.Rename(out, old); err != nil {
			return err
		}
	}
	if err := os.Rename(partial, out); err != nil {
		if old != "" {
			os.Rename(old, out) // put the previous package back
		}
		return err
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("new package installed in %s, but the previous one could not be removed: %v", out, err)
		}
	}
	return syncDir(filepath.Dir(out))
}

// PlanManifest returns the manifest that converting a checkpoint of config cfg with opts
// would write, without its hashes or any weights: the engine's memory plan for a model
// before anything is downloaded, and the size of a package before converting.
func PlanManifest(cfg model.Config, opts ConvertOptions) (*format.Manifest, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	specs, err := model.TensorSpecs(cfg)
	if err != nil {
		return nil, err
	}
	tensors, shards, err := plan(specs, opts)
	if err != nil {
		return nil, err
	}
	return &format.Manifest{Format: format.FormatName, FormatVersion: format.FormatVersion, Shards: shards, Tensors: tensors}, nil
}
