//go:build js && wasm

package engine

// VisionEmbed assembles the vision tower's input rows: cls then the patch rows, plus the
// position embeddings. CPU twin: model/vision.go (copy of cls, model.Add).
func (k *Kernels) VisionEmbed(out, cls, patches, pos Tensor, rows, dim int) (Step, error) {
	s, err := k.step("vision_embed", PipelineKey{Shader: "vision_embed.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(rows, dim, 0, 0), elementwiseGroups(rows*dim), 1, 1, cls, patches, pos, out)
	return s.with(twinVisionEmbed(out, cls, patches, pos, rows, dim)), err
}

// SplitQKV splits a fused [rows, 3, width] projection into q, k and v. CPU twin: the row
// slices of the fused weight in model/vision.go.
func (k *Kernels) SplitQKV(q, kt, v, qkv Tensor, rows, width int) (Step, error) {
	s, err := k.step("split_qkv", PipelineKey{Shader: "split_qkv.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(rows, width, 0, 0), elementwiseGroups(rows*width), 1, 1, qkv, q, kt, v)
	return s.with(twinSplitQKV(q, kt, v, qkv, rows, width)), err
}

// F16ToF32 expands n halves to floats. CPU twin: quant.DecodeF16.
func (k *Kernels) F16ToF32(dst, src Tensor, n int) (Step, error) {
	s, err := k.step("f16_to_f32", PipelineKey{Shader: "f16_to_f32.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(n, 0, 0, 0), elementwiseGroups(n), 1, 1, src, dst)
	return s.with(twinF16ToF32(dst, src, n)), err
}
