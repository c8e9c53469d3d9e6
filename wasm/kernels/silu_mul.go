//go:build js && wasm

package kernels

// SiLUMul: out = silu(gate) * up over n floats. CPU twin: model.SiLUMul.
func (k *Kernels) SiLUMul(out, gate, up Tensor, n int) (Step, error) {
	s, err := k.step("silu_mul", PipelineKey{Shader: "silu_mul.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(n, 0, 0, 0), elementwiseGroups(n), 1, 1, gate, up, out)
	return s.with(twinSiLUMul(out, gate, up, n)), err
}
