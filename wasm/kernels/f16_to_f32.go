//go:build js && wasm

package kernels

// F16ToF32 expands n halves to floats. CPU twin: quant.DecodeF16.
func (k *Kernels) F16ToF32(dst, src Tensor, n int) (Step, error) {
	s, err := k.step("f16_to_f32", PipelineKey{Shader: "f16_to_f32.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(n, 0, 0, 0), elementwiseGroups(n), 1, 1, src, dst)
	return s.with(twinF16ToF32(dst, src, n)), err
}
