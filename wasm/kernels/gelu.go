//go:build js && wasm

package kernels

// GELU applies the exact (erf) GELU in place over n floats. CPU twin: model.GELU.
func (k *Kernels) GELU(x Tensor, n int) (Step, error) {
	s, err := k.step("gelu", PipelineKey{Shader: "gelu.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(n, 0, 0, 0), elementwiseGroups(n), 1, 1, x)
	return s.with(twinGELU(x, n)), err
}
