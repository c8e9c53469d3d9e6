//go:build js && wasm

package kernels

import "github.com/cogvlm-web/cogvlm-web/model"

// GELU applies the exact (erf) GELU in place over n floats. CPU twin: model.GELU.
func (k *Kernels) GELU(x Tensor, n int) (Step, error) {
	s, err := k.step("gelu", PipelineKey{Shader: "gelu.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(n, 0, 0, 0), elementwiseGroups(n), 1, 1, x)
	if debugTwins {
		s = s.with(twinGELU(x, n))
	}
	return s, err
}

func twinGELU(x Tensor, n int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := rd.f32(x, n)
		model.GELU(want)
		return func(rd *reader) ([]float32, []float32) { return rd.f32(x, n), want }
	}
}
