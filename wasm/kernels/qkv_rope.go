//go:build js && wasm

package kernels

import (
	"fmt"

	"github.com/cogvlm-web/cogvlm-web/model"
)

// QKVRoPE splits a fused q/k/v projection [rows, 3, heads, headDim], rotates q and k at
// the rows' positions (u32 buffer) with the cos/sin table, writes q, and writes k and v to
// KV-cache rows state.write_row + r in the cache's precision. CPU twin: model.QKVRoPE.
func (k *Kernels) QKVRoPE(q Tensor, kv KVCache, qkv, positions, table Tensor, state *StepState, rows, heads, headDim int) (Step, error) {
	if headDim < 2 || headDim%2 != 0 {
		return Step{}, fmt.Errorf("qkv rope: head_dim %d is not even", headDim)
	}
	// four dimensions an invocation, or two where half a head is odd (ODD_HALF)
	items, oddHalf := rows*heads*headDim/4, 0.0
	if headDim%4 != 0 {
		items, oddHalf = rows*heads*headDim/2, 1
	}
	s, err := k.step("qkv_rope", PipelineKey{Shader: "qkv_rope.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}, {"F16_KV", kv.f16()}, {"ODD_HALF", oddHalf}}},
		params(rows, heads, headDim, 0), elementwiseGroups(items), 1, 1, qkv, positions, table, q, kv.K, kv.V, state.tensor())
	if debugTwins {
		s = s.with(twinQKVRoPE(q, kv, qkv, positions, state, rows, heads, headDim))
	}
	return s, err
}

// RoPETable returns vec2(cos, sin) pairs [maxPos, headDim/2] for qkv_rope.wgsl from
// model.RoPECosSin, so the GPU rotates by exactly the CPU's
// coefficients.
func RoPETable(maxPos, headDim int, base float64) []float32 {
	half := headDim / 2
	t := make([]float32, 0, maxPos*half*2)
	for pos := range maxPos {
		for i := range half {
			cos, sin := model.RoPECosSin(pos, i, headDim, base)
			t = append(t, cos, sin)
		}
	}
	return t
}

// twinQKVRoPE checks q and the cache rows written (k rotated, v copied, rounded to f16
// for an f16 cache), concatenated.
func twinQKVRoPE(q Tensor, kv KVCache, qkv, positions Tensor, state *StepState, n, heads, headDim int) twin {
	width := heads * headDim
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		writeRow := int(rd.u32(state.tensor(), 2)[1])
		want := make([]float32, 3*n*width) // q, k, v
		wq, wk, wv := want[:n*width], want[n*width:2*n*width], want[2*n*width:]
		model.QKVRoPE(wq, wk, wv, rd.f32(qkv, n*3*width), rd.ints(positions, n), n, heads, headDim, model.RoPEBase)
		if kv.Precision == KVF16 {
			roundF16(wk)
			roundF16(wv)
		}
		return func(rd *reader) ([]float32, []float32) {
			got := rd.f32(q, n*width)
			got = append(got, rd.kv(kv.K, kv.Precision, writeRow*width, n*width)...)
			got = append(got, rd.kv(kv.V, kv.Precision, writeRow*width, n*width)...)
			return got, want
		}
	}
}
