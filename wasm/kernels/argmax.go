//go:build js && wasm

package kernels

import "github.com/cogvlm-web/cogvlm-web/model"

// Argmax writes the index of the largest of n logits (the lowest on ties) as a u32 to
// result: greedy decoding reads back 4 bytes. CPU twin: model.Argmax.
func (k *Kernels) Argmax(result, logits Tensor, n int) (Step, error) {
	s, err := k.step("argmax", PipelineKey{Shader: "argmax.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", 256}}},
		params(n, 0, 0, 0), 1, 1, 1, logits, result)
	if debugTwins {
		s = s.with(twinArgmax(result, logits, n))
	}
	return s, err
}

func twinArgmax(result, logits Tensor, n int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		best := model.Argmax(rd.f32(logits, n))
		return func(rd *reader) ([]float32, []float32) {
			return []float32{float32(rd.u32(result, 1)[0])}, []float32{float32(best)}
		}
	}
}
