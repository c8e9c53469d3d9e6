//go:build js && wasm

package kernels

// VisionEmbed assembles the vision tower's input rows: cls then the patch rows, plus the
// position embeddings. CPU twin: model/vision.go (copy of cls, model.Add).
func (k *Kernels) VisionEmbed(out, cls, patches, pos Tensor, rows, dim int) (Step, error) {
	s, err := k.step("vision_embed", PipelineKey{Shader: "vision_embed.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(rows, dim, 0, 0), elementwiseGroups(rows*dim), 1, 1, cls, patches, pos, out)
	return s.with(twinVisionEmbed(out, cls, patches, pos, rows, dim)), err
}
