//go:build js && wasm

package engine

import (
	"fmt"
	"math"

	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// attentionKeys is attention.wgsl's chunk size; head_dim may be up to 4× it.
const attentionKeys = 64

// StepState is the 16-byte uniform of per-step values every plan reads (the Step struct
// of the shaders): a decode step rewrites it with one writeBuffer and replays an
// unchanged plan.
type StepState struct {
	Buf *gpu.Buffer
}

// NewStepState allocates the uniform.
func (k *Kernels) NewStepState(label string) (*StepState, error) {
	b, err := k.Dev.CreateBuffer(label, 16, gpu.UsageUniform|gpu.UsageCopyDst|gpu.UsageCopySrc) // CopySrc: the debug mode reads it
	if err != nil {
		return nil, err
	}
	return &StepState{Buf: b}, nil
}

// Set queues the values for the next submit: kvRows valid KV-cache rows after this step,
// whose first new row is writeRow.
func (s *StepState) Set(d *gpu.Device, kvRows, writeRow int) error {
	return d.WriteBuffer(s.Buf, 0, gpu.Uint32Bytes([]uint32{uint32(kvRows), uint32(writeRow), 0, 0}))
}

func (s *StepState) tensor() Tensor { return Tensor{Buf: s.Buf, Size: 16} }

// Attention computes softmax(q·kᵀ/√headDim)·v per head over the first state.kv_rows rows
// of k and v (see attention.wgsl for the layout and the causal rule). CPU twin:
// model.Attention.
func (k *Kernels) Attention(out, q, kc, vc Tensor, state *StepState, qRows, heads, headDim int, causal bool) (Step, error) {
	if headDim > 4*attentionKeys || qRows < 1 {
		return Step{}, fmt.Errorf("attention: unsupported shape q_rows=%d head_dim=%d", qRows, headDim)
	}
	c := 0
	if causal {
		c = 1
	}
	scale := float32(1 / math.Sqrt(float64(headDim)))
	s, err := k.step("attention", PipelineKey{Shader: "attention.wgsl", Consts: [4]Const{{"KEYS", attentionKeys}}},
		params(qRows, 0, heads, headDim, c, scale, 0, 0), uint32(qRows), uint32(heads), 1, q, kc, vc, out, state.tensor())
	return s.with(twinAttention(out, q, kc, vc, state, qRows, heads, headDim, causal)), err
}
