//go:build js && wasm

package kernels

// Argmax writes the index of the largest of n logits (the lowest on ties) as a u32 to
// result: greedy decoding reads back 4 bytes. CPU twin: model.Sampler, temperature 0.
func (k *Kernels) Argmax(result, logits Tensor, n int) (Step, error) {
	s, err := k.step("argmax", PipelineKey{Shader: "argmax.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", 256}}},
		params(n, 0, 0, 0), 1, 1, 1, logits, result)
	return s.with(twinArgmax(result, logits, n)), err
}
