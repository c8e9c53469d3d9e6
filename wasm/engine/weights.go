//go:build js && wasm

package engine

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/pkg"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// ErrIntegrity marks a shard whose bytes do not match the manifest's SHA-256.
var ErrIntegrity = errors.New("integrity check failed")

// Weight is one tensor of a package on the GPU: bindings into its shard's buffer.
type Weight struct {
	pkg.TensorEntry
	Data, Scales Tensor // Scales only for q4/q8
}

// Package is a converted model package uploaded to the GPU: one buffer per shard, every
// tensor a binding at its offset. Weight bytes go fetch → ArrayBuffer → GPU and never
// through the Go heap.
type Package struct {
	Manifest *pkg.Manifest
	Config   model.Config
	BaseURL  string
	shards   []*gpu.Buffer
	expanded []*gpu.Buffer // f32 copies of f16 tensors
	weights  map[string]Weight
}

// Progress reports bytes of shards uploaded so far out of the total.
type Progress func(done, total int64)

// ShardSource delivers one shard's bytes as a JS ArrayBuffer. The default fetches it next
// to the manifest; the app's worker passes one that reads its verified browser cache.
type ShardSource func(f pkg.FileEntry) (safejs.Value, error)

// LoadOptions tune LoadPackage.
type LoadOptions struct {
	Progress Progress
	// Shards replaces fetching; Verified says its bytes were already checked against the
	// manifest's SHA-256 (the engine then skips hashing them again).
	Shards   ShardSource
	Verified bool
	// Before, when set, sees the manifest before any shard is fetched and may refuse it
	// (the memory plan against the device's limits).
	Before func(m *pkg.Manifest, cfg model.Config) error
	// Manifest, when set, is manifest.json's text, already read (and trusted) by the
	// caller; otherwise it is fetched from the manifest URL.
	Manifest string
}

// LoadPackage fetches manifest.json at manifestURL, then every shard: verified with
// SHA-256, uploaded into a GPU buffer of its own.
func LoadPackage(k *Kernels, manifestURL string, progress Progress) (*Package, error) {
	return LoadPackageWith(k, manifestURL, LoadOptions{Progress: progress})
}

// LoadPackageWith is LoadPackage with a shard source.
func LoadPackageWith(k *Kernels, manifestURL string, o LoadOptions) (*Package, error) {
	progress := o.Progress
	text := o.Manifest
	if text == "" {
		var err error
		if text, err = FetchText(manifestURL); err != nil {
			return nil, err
		}
	}
	m, cfg, err := pkg.ParseManifest([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", manifestURL, err)
	}
	if o.Before != nil {
		if err := o.Before(m, cfg); err != nil {
			return nil, err
		}
	}
	base := manifestURL[:strings.LastIndex(manifestURL, "/")+1]
	p := &Package{Manifest: m, Config: cfg, BaseURL: base, weights: map[string]Weight{}}
	var total, done int64
	for _, s := range m.Shards {
		total += s.Size
	}
	for _, s := range m.Shards {
		if s.Size > int64(k.Dev.Limits.MaxStorageBufferBindingSize) {
			p.Release()
			return nil, fmt.Errorf("shard %s: %d bytes %w maxStorageBufferBindingSize %d", s.File, s.Size, gpu.ErrLimit, k.Dev.Limits.MaxStorageBufferBindingSize)
		}
		buf, err := p.uploadShard(k, s, o)
		if err != nil {
			p.Release()
			return nil, err
		}
		p.shards = append(p.shards, buf)
		// Go keeps every JS value it has seen (each shard's ArrayBuffer, the promise that
		// delivered it) until its own garbage collector finalizes the reference, and the
		// engine's small heap seldom collects. Held from Go, every uploaded shard outlived
		// its upload, and V8, whose collections are paced by the ArrayBuffer memory they
		// can free, left the rest of the load's garbage (the browser's own copies of each
		// shard on its way) uncollected too: more than a package's worth in the worker's
		// process at the end of a load (bench/README.md, "Where the browser's memory
		// goes"). A collection after each shard lets them go (tens of ms for a heap
		// this small; collecting every 32 or 128 MB instead left more behind).
		runtime.GC()
		done += s.Size
		if progress != nil {
			progress(done, total)
		}
	}
	for _, t := range m.Tensors {
		w := Weight{TensorEntry: t, Data: Tensor{Buf: p.shards[t.Shard], Offset: uint64(t.Offset), Size: uint64(t.Length)}}
		if t.Encoding.Quantized() {
			w.Scales = Tensor{Buf: p.shards[t.Shard], Offset: uint64(t.ScalesOffset), Size: uint64(t.ScalesLength)}
		}
		p.weights[t.Name] = w
	}
	if err := p.expandF16(k); err != nil {
		p.Release()
		return nil, err
	}
	return p, nil
}

// expandF16 gives every f16 tensor (the patch-embedding conv and the position
// embeddings of a q4 package: a few MB) an f32 copy on the GPU, made once by a kernel, so
// no other kernel needs shader-f16 or an f16 variant.
func (p *Package) expandF16(k *Kernels) error {
	mark := k.params.Mark()
	defer k.params.Release(mark)
	plan := &Plan{}
	for name, w := range p.weights {
		if w.Encoding != quant.F16 {
			continue
		}
		n := int(w.Numel())
		buf, err := k.Dev.CreateBuffer(name+" (f32)", uint64(4*n), gpu.UsageStorage|gpu.UsageCopySrc)
		if err != nil {
			return err
		}
		p.expanded = append(p.expanded, buf)
		step, err := k.F16ToF32(Whole(buf), w.Data, n)
		if err != nil {
			return err
		}
		plan.Add(step)
		w.Encoding, w.Data = quant.F32, Whole(buf)
		p.weights[name] = w
	}
	if len(plan.Steps) == 0 {
		return nil
	}
	return k.Run(plan)
}

func (p *Package) uploadShard(k *Kernels, s pkg.FileEntry, o LoadOptions) (*gpu.Buffer, error) {
	var ab safejs.Value
	var err error
	if o.Shards != nil {
		ab, err = o.Shards(s)
	} else {
		ab, err = fetchArrayBuffer(p.BaseURL + s.File)
	}
	if err != nil {
		return nil, err
	}
	n, err := byteLen(ab)
	if err != nil {
		return nil, err
	}
	if n != s.Size {
		return nil, fmt.Errorf("shard %s: %w: %d bytes, the manifest says %d", s.File, ErrIntegrity, n, s.Size)
	}
	if !o.Verified {
		sum, err := sha256Hex(ab)
		if err != nil {
			return nil, fmt.Errorf("shard %s: %w", s.File, err)
		}
		if sum != s.SHA256 {
			return nil, fmt.Errorf("shard %s: %w: sha256 %s, the manifest says %s", s.File, ErrIntegrity, sum, s.SHA256)
		}
	}
	buf, err := k.Dev.CreateBuffer("shard "+s.File, uint64(s.Size), gpu.UsageStorage|gpu.UsageCopyDst|gpu.UsageCopySrc) // CopySrc: the debug mode reads weights back
	if err != nil {
		return nil, err
	}
	if err := k.Dev.WriteBufferJS(buf, 0, ab); err != nil {
		buf.Destroy()
		return nil, err
	}
	return buf, nil
}

func byteLen(ab safejs.Value) (int64, error) {
	v, err := ab.Get("byteLength")
	if err != nil {
		return 0, err
	}
	f, err := v.Float()
	return int64(f), err
}

// Weight returns a tensor by its Hugging Face name.
func (p *Package) Weight(name string) (Weight, error) {
	w, ok := p.weights[name]
	if !ok {
		return Weight{}, fmt.Errorf("package has no tensor %q", name)
	}
	return w, nil
}

// Release frees the shard buffers.
func (p *Package) Release() {
	for _, b := range append(p.shards, p.expanded...) {
		b.Destroy()
	}
	p.shards, p.expanded = nil, nil
}

// Linear records out[m, n] = x[m, k] · Wᵀ (+ bias) for a weight of any encoding the
// kernels support.
func (k *Kernels) Linear(out, x Tensor, w Weight, bias *Weight, m int) (Step, error) {
	if len(w.Shape) != 2 {
		return Step{}, fmt.Errorf("%s: not a matrix (shape %v)", w.Name, w.Shape)
	}
	n, kdim := w.Shape[0], w.Shape[1]
	var b Tensor
	if bias != nil {
		if bias.Encoding != quant.F32 {
			return Step{}, fmt.Errorf("%s: bias encoding %s is not supported (want f32)", bias.Name, bias.Encoding)
		}
		b = bias.Data
	}
	switch w.Encoding {
	case quant.F32:
		return k.MatMul(out, x, w.Data, b, m, kdim, n)
	case quant.Q4:
		return k.MatMulQ4(out, x, w.Data, w.Scales, b, m, kdim, n, w.GroupSize)
	case quant.Q8:
		return k.MatMulQ8(out, x, w.Data, w.Scales, b, m, kdim, n, w.GroupSize)
	}
	return Step{}, fmt.Errorf("%s: encoding %s has no GPU matmul yet", w.Name, w.Encoding)
}
