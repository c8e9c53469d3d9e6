//go:build js && wasm

package kernels

// Add: out = a + b over n floats. CPU twin: model.Add.
func (k *Kernels) Add(out, a, b Tensor, n int) (Step, error) {
	s, err := k.step("add", PipelineKey{Shader: "add.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(n, 0, 0, 0), elementwiseGroups(n), 1, 1, a, b, out)
	return s.with(twinAdd(out, a, b, n)), err
}
