//go:build js && wasm

package kernels

import "github.com/cogvlm-web/cogvlm-web/model"

// F16ToF32 expands n halves to floats. CPU twin: model.F16ToF32.
func (k *Kernels) F16ToF32(dst, src Tensor, n int) (Step, error) {
	s, err := k.step("f16_to_f32", PipelineKey{Shader: "f16_to_f32.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(n, 0, 0, 0), elementwiseGroups(n), 1, 1, src, dst)
	if debugTwins {
		s = s.with(twinF16ToF32(dst, src, n))
	}
	return s, err
}

func twinF16ToF32(dst, src Tensor, n int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := make([]float32, n)
		model.F16ToF32(want, rd.u16(src, n))
		return func(rd *reader) ([]float32, []float32) { return rd.f32(dst, n), want }
	}
}
