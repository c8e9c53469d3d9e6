//go:build js && wasm

package engine

import (
	"fmt"
	"math"
)

// attentionKeys is attention.wgsl's chunk size; head_dim may be up to 4× it.
const attentionKeys = 64

// Attention computes softmax(q·kᵀ/√headDim)·v per head (see attention.wgsl for the
// layout and the causal rule). CPU twin: model.Attention.
func (k *Kernels) Attention(out, q, kc, vc Tensor, qRows, kvRows, heads, headDim int, causal bool) (Step, error) {
	if headDim > 4*attentionKeys || qRows > kvRows || qRows < 1 {
		return Step{}, fmt.Errorf("attention: unsupported shape q_rows=%d kv_rows=%d head_dim=%d", qRows, kvRows, headDim)
	}
	c := 0
	if causal {
		c = 1
	}
	scale := float32(1 / math.Sqrt(float64(headDim)))
	return k.step("attention", PipelineKey{Shader: "attention.wgsl", Consts: [4]Const{{"KEYS", attentionKeys}}},
		params(qRows, kvRows, heads, headDim, c, scale, 0, 0), uint32(qRows), uint32(heads), 1, q, kc, vc, out)
}
