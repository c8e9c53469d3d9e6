//go:build js && wasm

package engine

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/format"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

// ErrIntegrity marks a shard whose length is not the manifest's (the host checked its
// SHA-256; a length that differs is a host's bug or a file changed under it).
var ErrIntegrity = errors.New("integrity check failed")

// Package is a converted model package uploaded to the GPU: one buffer per shard, every
// tensor a binding at its offset. Weight bytes go from the host's ArrayBuffers (the
// worker's verified downloads or stored copies) to the GPU and never through the Go heap.
type Package struct {
	Manifest *format.Manifest
	Config   model.Config
	shards   []*gpu.Buffer
	expanded []*gpu.Buffer // f32 copies of f16 tensors
	weights  map[string]kernels.Weight
}

// Progress reports bytes of shards uploaded so far out of the total.
type Progress func(done, total int64)

// ShardSource delivers one shard's bytes as a JS ArrayBuffer. The engine does not fetch
// or verify: the host does (web/loader.js checks size and SHA-256 and keeps the stored
// copy), and the engine only checks that the length is the manifest's.
type ShardSource func(f format.FileEntry) (safejs.Value, error)

// LoadOptions are LoadPackage's inputs: the manifest and the shards come from the host.
type LoadOptions struct {
	// Manifest is manifest.json's text, read by the host.
	Manifest string
	// Shards delivers each shard, asked for once each, in manifest order.
	Shards   ShardSource
	Progress Progress
	// Before, when set, sees the manifest before any shard is asked for and may refuse it
	// (the memory plan against the device's limits).
	Before func(m *format.Manifest, cfg model.Config) error
}

// LoadPackage parses the manifest (name says whose, in messages), then uploads every
// shard from o.Shards into a GPU buffer of its own.
func LoadPackage(k *kernels.Kernels, name string, o LoadOptions) (*Package, error) {
	if o.Shards == nil {
		return nil, fmt.Errorf("%s: no shard source", name)
	}
	m, cfg, err := format.ParseManifest([]byte(o.Manifest))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if o.Before != nil {
		if err := o.Before(m, cfg); err != nil {
			return nil, err
		}
	}
	p := &Package{Manifest: m, Config: cfg, weights: map[string]kernels.Weight{}}
	var total, done int64
	for _, s := range m.Shards {
		total += s.Size
	}
	for _, s := range m.Shards {
		buf, err := p.uploadShard(k, s, o.Shards)
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
		if o.Progress != nil {
			o.Progress(done, total)
		}
	}
	for _, t := range m.Tensors {
		w := kernels.Weight{TensorEntry: t, Data: kernels.Tensor{Buf: p.shards[t.Shard], Offset: uint64(t.Offset), Size: uint64(t.Length)}}
		if t.Encoding.Quantized() {
			w.Scales = kernels.Tensor{Buf: p.shards[t.Shard], Offset: uint64(t.ScalesOffset), Size: uint64(t.ScalesLength)}
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
func (p *Package) expandF16(k *kernels.Kernels) error {
	mark := k.Params.Mark()
	defer k.Params.Release(mark)
	plan := &kernels.Plan{}
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
		step, err := k.F16ToF32(kernels.Whole(buf), w.Data, n)
		if err != nil {
			return err
		}
		plan.Add(step)
		w.Encoding, w.Data = quant.F32, kernels.Whole(buf)
		p.weights[name] = w
	}
	if len(plan.Steps) == 0 {
		return nil
	}
	return k.Run(plan)
}

func (p *Package) uploadShard(k *kernels.Kernels, s format.FileEntry, source ShardSource) (*gpu.Buffer, error) {
	ab, err := source(s)
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w", s.File, err)
	}
	n, err := byteLen(ab)
	if err != nil {
		return nil, err
	}
	if n != s.Size {
		return nil, fmt.Errorf("shard %s: %w: %d bytes, the manifest says %d", s.File, ErrIntegrity, n, s.Size)
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
func (p *Package) Weight(name string) (kernels.Weight, error) {
	w, ok := p.weights[name]
	if !ok {
		return kernels.Weight{}, fmt.Errorf("package has no tensor %q", name)
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
