//go:build js && wasm

package engine

import (
	"fmt"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/format"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

// MemoryPlan is the GPU memory a session needs, computed from the config and the
// manifest before anything is downloaded. It counts exactly the buffers NewDecoder,
// NewVision and LoadPackage create (a browser test holds it to the device's count).
type MemoryPlan struct {
	Weights    int64 // shards, plus the f32 copies of f16 tensors
	KVCache    int64 // keys and values of every layer for MaxSeq positions
	Decoder    int64 // the decoder's activations for prompts of MaxPrefill tokens
	Vision     int64 // the vision tower's and the adapter's activations
	MaxSeq     int
	MaxPrefill int
	// The largest buffer must fit maxBufferSize. The largest binding (a tensor part of a
	// shard, or an activation buffer, which are bound whole) must fit
	// maxStorageBufferBindingSize.
	LargestBuffer      int64
	LargestBufferName  string
	LargestBinding     int64
	LargestBindingName string
}

// Total is the peak: everything is allocated for the whole session.
func (m MemoryPlan) Total() int64 { return m.Weights + m.KVCache + m.Decoder + m.Vision }

func gb(n int64) string { return fmt.Sprintf("%.2f GB", float64(n)/1e9) }

func (m MemoryPlan) String() string {
	return fmt.Sprintf("needs %s of GPU memory: weights %s, KV cache %s for %d positions, activations %s (prompts up to %d tokens), vision %s; largest buffer %s (%s), largest binding %s (%s)",
		gb(m.Total()), gb(m.Weights), gb(m.KVCache), m.MaxSeq, gb(m.Decoder), m.MaxPrefill, gb(m.Vision),
		gb(m.LargestBuffer), m.LargestBufferName, gb(m.LargestBinding), m.LargestBindingName)
}

// Check refuses a plan the device's limits cannot hold, with the numbers.
func (m MemoryPlan) Check(l gpu.Limits) error {
	if uint64(m.LargestBuffer) > l.MaxBufferSize {
		return fmt.Errorf("%s: the %s buffer %w maxBufferSize %s", m, m.LargestBufferName, gpu.ErrLimit, gb(int64(l.MaxBufferSize)))
	}
	if uint64(m.LargestBinding) > l.MaxStorageBufferBindingSize {
		return fmt.Errorf("%s: binding %s of %s %w maxStorageBufferBindingSize %s", m, m.LargestBindingName, gb(m.LargestBinding), gpu.ErrLimit, gb(int64(l.MaxStorageBufferBindingSize)))
	}
	return nil
}

// PlanMemory computes the plan for a package's manifest and config.
func PlanMemory(cfg model.Config, m *format.Manifest, maxSeq, maxPrefill int, kv kernels.KVPrecision) MemoryPlan {
	p := MemoryPlan{MaxSeq: maxSeq, MaxPrefill: maxPrefill}
	buffer := func(name string, bytes int64) int64 {
		if bytes > p.LargestBuffer {
			p.LargestBuffer, p.LargestBufferName = bytes, name
		}
		return bytes
	}
	binding := func(name string, bytes int64) int64 {
		if bytes > p.LargestBinding {
			p.LargestBinding, p.LargestBindingName = bytes, name
		}
		return bytes
	}
	big := func(name string, bytes int64) int64 { return binding(name, buffer(name, bytes)) }
	for _, s := range m.Shards {
		p.Weights += buffer("shard "+s.File, round4(s.Size))
	}
	for _, t := range m.Tensors {
		binding(t.Name, t.Length)
		binding(t.Name+" scales", t.ScalesLength)
		if t.Encoding == quant.F16 {
			p.Weights += big(t.Name+" (f32)", 4*t.Numel())
		}
	}
	H, I, V := int64(cfg.HiddenSize), int64(cfg.IntermediateSize), int64(cfg.VocabSize)
	R, S, L := int64(maxPrefill), int64(maxSeq), int64(cfg.NumHiddenLayers)
	f := func(name string, floats int64) int64 { return big(name, round4(4*floats)) }
	p.KVCache = 2 * L * big("k cache", int64(kvCacheBytes(int(S), int(H), kv)))
	p.Decoder = 5*f("x", R*H) + f("qkv", 3*R*H) + 3*f("gate", R*I) + f("hidden", H) + f("logits", V) +
		partials(cfg, maxSeq, f) + 2*f("ids", R) + 3*f("token", 1) /* token, position, read-back */ + f("rope table", int64(cfg.MaxPositionEmbeddings*cfg.HeadDim())) + 16 /* step */ + 16 /* sample draw */
	vc := cfg.Vision
	D, F := int64(vc.HiddenSize), int64(vc.IntermediateSize)
	P := int64(vc.ImageSize / vc.PatchSize)
	patches := P * P
	N := patches + 1
	p.Vision = f("patch rows", patches*int64(vc.InChannels*vc.PatchSize*vc.PatchSize)) + f("patch embeddings", patches*D) +
		5*f("vision x", N*D) + f("vision qkv", 3*N*D) + 3*f("vision q", N*D) + f("vision mlp", N*F) +
		2*f("adapter h", patches*H) + 3*f("adapter gate", patches*I) + f("image rows", (patches+2)*H) + 16 /* step */
	return p
}

func round4(n int64) int64 { return (n + 3) &^ 3 }

// partials is the split decode attention's buffer, when the cache is long enough to split.
func partials(cfg model.Config, maxSeq int, f func(string, int64) int64) int64 {
	if maxSeq <= decodePartKeys {
		return 0
	}
	return f("attention partials", int64(kernels.AttentionPartials(1, cfg.NumAttentionHeads, cfg.HeadDim(), maxSeq, decodePartKeys)))
}
