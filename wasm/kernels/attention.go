//go:build js && wasm

package kernels

import (
	"fmt"
	"math"

	"github.com/cogvlm-web/cogvlm-web/model"
)

// attentionKeys is attention.wgsl's chunk size; head_dim may be up to 4× it.
const attentionKeys = 64

// attentionTile is attention_tiled.wgsl's TILE: query rows per workgroup.
const attentionTile = 4

// Attention computes softmax(q·kᵀ/√headDim)·v per head over the first state.kv_rows rows
// of the cache's k and v (see attention.wgsl for the layout and the causal rule): one
// query row per workgroup for decode, tiles of attentionTile rows (attention_tiled.wgsl,
// every key and value loaded once per tile) for prefill and the vision tower. CPU twin:
// model.Attention.
func (k *Kernels) Attention(out, q Tensor, kv KVCache, state *StepState, qRows, heads, headDim int, causal bool) (Step, error) {
	if err := attentionShape(kv, qRows, headDim); err != nil {
		return Step{}, err
	}
	var tw twin
	if debugTwins {
		tw = twinAttention(out, q, kv, state, qRows, heads, headDim, causal)
	}
	if qRows > 1 && !k.NoAttentionTiles {
		s, err := k.step("attention (tiles)", PipelineKey{Shader: "attention_tiled.wgsl", Consts: [4]Const{{"KEYS", attentionKeys}, {"F16_KV", kv.f16()}}},
			attentionParams(qRows, heads, headDim, causal), uint32((qRows+attentionTile-1)/attentionTile), uint32(heads), 1, q, kv.K, kv.V, out, state.tensor())
		return s.with(tw), err
	}
	dummy, err := k.noBias() // the partial-results binding, unused without a split
	if err != nil {
		return Step{}, err
	}
	s, err := k.step("attention", PipelineKey{Shader: "attention.wgsl", Consts: [4]Const{{"KEYS", attentionKeys}, {"F16_KV", kv.f16()}}},
		attentionParams(qRows, heads, headDim, causal), uint32(qRows), uint32(heads), 1, q, kv.K, kv.V, out, state.tensor(), dummy)
	return s.with(tw), err
}

// attentionShape checks what the attention kernels handle: head_dim up to 4·KEYS (each
// invocation keeps 4 output dimensions), even where k and v are f16 pairs (the language
// model's cache; the vision tower's f32 k and v may have an odd head_dim).
func attentionShape(kv KVCache, qRows, headDim int) error {
	if qRows < 1 || headDim < 1 || headDim > 4*attentionKeys || kv.Precision == KVF16 && headDim%2 != 0 {
		return fmt.Errorf("attention: unsupported shape q_rows=%d head_dim=%d (at most %d, even for an f16 cache)", qRows, headDim, 4*attentionKeys)
	}
	return nil
}

func attentionParams(qRows, heads, headDim int, causal bool) []byte {
	c := 0
	if causal {
		c = 1
	}
	return params(qRows, 0, heads, headDim, c, float32(1/math.Sqrt(float64(headDim))), 0, 0)
}

// AttentionPartials is the size in floats of the partial results of AttentionSplit.
func AttentionPartials(qRows, heads, headDim, maxKV, partKeys int) int {
	return qRows * heads * ((maxKV + partKeys - 1) / partKeys) * (headDim + 2)
}

// AttentionSplit is Attention split over the sequence in partitions of partKeys keys
// (for decode over a long cache: heads × partitions workgroups instead of heads), for
// caches of up to maxKV rows; partial holds AttentionPartials floats. It returns the
// partial pass and the combining pass. CPU twin: model.Attention.
func (k *Kernels) AttentionSplit(out, q Tensor, kv KVCache, partial Tensor, state *StepState, qRows, heads, headDim int, causal bool, maxKV, partKeys int) ([]Step, error) {
	if err := attentionShape(kv, qRows, headDim); err != nil {
		return nil, err
	}
	if partKeys < attentionKeys || partKeys%attentionKeys != 0 {
		return nil, fmt.Errorf("attention split: part_keys=%d is not a multiple of %d", partKeys, attentionKeys)
	}
	parts := (maxKV + partKeys - 1) / partKeys
	s1, err := k.step("attention split", PipelineKey{Shader: "attention.wgsl", Consts: [4]Const{{"KEYS", attentionKeys}, {"PART_KEYS", float64(partKeys)}, {"F16_KV", kv.f16()}}},
		attentionParams(qRows, heads, headDim, causal), uint32(qRows), uint32(heads), uint32(parts), q, kv.K, kv.V, out, state.tensor(), partial)
	if err != nil {
		return nil, err
	}
	s2, err := k.step("attention combine", PipelineKey{Shader: "attention_combine.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", 64}}},
		params(qRows, heads, headDim, parts), uint32(qRows), uint32(heads), 1, partial, out)
	if err != nil {
		return nil, err
	}
	if debugTwins {
		// The partial pass leaves out untouched; the pair is checked as one op, on the second.
		s1 = s1.with(func(rd *reader) func(*reader) ([]float32, []float32) {
			return func(*reader) ([]float32, []float32) { return nil, nil }
		})
		s2 = s2.with(twinAttention(out, q, kv, state, qRows, heads, headDim, causal))
	}
	return []Step{s1, s2}, nil
}

func twinAttention(out, q Tensor, kv KVCache, state *StepState, qRows, heads, headDim int, causal bool) twin {
	width := heads * headDim
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		kvRows := int(rd.u32(state.tensor(), 1)[0])
		want := make([]float32, qRows*width)
		model.Attention(want, rd.f32(q, qRows*width), rd.kv(kv.K, kv.Precision, 0, kvRows*width), rd.kv(kv.V, kv.Precision, 0, kvRows*width),
			make([]float32, kvRows), qRows, kvRows, heads, headDim, causal)
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, qRows*width), want }
	}
}
