//go:build js && wasm

package kernels

import "github.com/cogvlm-web/cogvlm-web/model"

// SiLUMul: out = silu(gate) * up over n floats. CPU twin: model.SiLUMul.
func (k *Kernels) SiLUMul(out, gate, up Tensor, n int) (Step, error) {
	s, err := k.step("silu_mul", PipelineKey{Shader: "silu_mul.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(n, 0, 0, 0), elementwiseGroups(n), 1, 1, gate, up, out)
	if debugTwins {
		s = s.with(twinSiLUMul(out, gate, up, n))
	}
	return s, err
}

func twinSiLUMul(out, gate, up Tensor, n int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := make([]float32, n)
		model.SiLUMul(want, rd.f32(gate, n), rd.f32(up, n))
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, n), want }
	}
}
