//go:build js && wasm

package kernels

import "github.com/cogvlm-web/cogvlm-web/model"

// Add: out = a + b over n floats. CPU twin: model.Add.
func (k *Kernels) Add(out, a, b Tensor, n int) (Step, error) {
	s, err := k.step("add", PipelineKey{Shader: "add.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(n, 0, 0, 0), elementwiseGroups(n), 1, 1, a, b, out)
	if debugTwins {
		s = s.with(twinAdd(out, a, b, n))
	}
	return s, err
}

func twinAdd(out, a, b Tensor, n int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := rd.f32(a, n)
		model.Add(want, want, rd.f32(b, n))
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, n), want }
	}
}
