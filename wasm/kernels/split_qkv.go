//go:build js && wasm

package kernels

import "github.com/cogvlm-web/cogvlm-web/model"

// SplitQKV splits a fused [rows, 3, width] projection into q, k and v (the vision tower's;
// the CPU reference slices the fused weight's rows instead). CPU twin: model.SplitQKV.
func (k *Kernels) SplitQKV(q, kt, v, qkv Tensor, rows, width int) (Step, error) {
	s, err := k.step("split_qkv", PipelineKey{Shader: "split_qkv.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(rows, width, 0, 0), elementwiseGroups(rows*width), 1, 1, qkv, q, kt, v)
	if debugTwins {
		s = s.with(twinSplitQKV(q, kt, v, qkv, rows, width))
	}
	return s, err
}

func twinSplitQKV(q, kt, v, qkv Tensor, n, width int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := make([]float32, 3*n*width) // q, k, v
		model.SplitQKV(want[:n*width], want[n*width:2*n*width], want[2*n*width:], rd.f32(qkv, n*3*width), n, width)
		return func(rd *reader) ([]float32, []float32) {
			return append(append(rd.f32(q, n*width), rd.f32(kt, n*width)...), rd.f32(v, n*width)...), want
		}
	}
}
