//go:build js && wasm

package kernels

import "github.com/cogvlm-web/cogvlm-web/model"

// VisionEmbed assembles the vision tower's input rows: cls then the patch rows, plus the
// position embeddings. CPU twin: model.VisionEmbed.
func (k *Kernels) VisionEmbed(out, cls, patches, pos Tensor, rows, dim int) (Step, error) {
	s, err := k.step("vision_embed", PipelineKey{Shader: "vision_embed.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(rows, dim, 0, 0), elementwiseGroups(rows*dim), 1, 1, cls, patches, pos, out)
	if debugTwins {
		s = s.with(twinVisionEmbed(out, cls, patches, pos, rows, dim))
	}
	return s, err
}

func twinVisionEmbed(out, cls, patches, pos Tensor, n, dim int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := make([]float32, n*dim)
		model.VisionEmbed(want, rd.f32(cls, dim), rd.f32(patches, (n-1)*dim), rd.f32(pos, n*dim), n, dim)
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, n*dim), want }
	}
}
