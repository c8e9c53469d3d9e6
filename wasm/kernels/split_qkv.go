//go:build js && wasm

package kernels

// SplitQKV splits a fused [rows, 3, width] projection into q, k and v. CPU twin: the row
// slices of the fused weight in model/vision.go.
func (k *Kernels) SplitQKV(q, kt, v, qkv Tensor, rows, width int) (Step, error) {
	s, err := k.step("split_qkv", PipelineKey{Shader: "split_qkv.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(rows, width, 0, 0), elementwiseGroups(rows*width), 1, 1, qkv, q, kt, v)
	return s.with(twinSplitQKV(q, kt, v, qkv, rows, width)), err
}
