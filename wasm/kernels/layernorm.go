//go:build js && wasm

package kernels

import (
	"fmt"

	"github.com/cogvlm-web/cogvlm-web/model"
)

// LayerNorm: out = (x − mean)/sqrt(var + eps) * weight + bias. CPU twin: model.LayerNorm.
func (k *Kernels) LayerNorm(out, x, weight, bias Tensor, rows, dim int, eps float32) (Step, error) {
	if rows < 1 || dim < 1 {
		return Step{}, fmt.Errorf("layernorm: bad shape %d×%d", rows, dim)
	}
	s, err := k.step("layernorm", PipelineKey{Shader: "layernorm.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", rowWG}}},
		params(rows, dim, eps, 0), uint32(rows), 1, 1, x, weight, bias, out)
	if debugTwins {
		s = s.with(twinLayerNorm(out, x, weight, bias, rows, dim, eps))
	}
	return s, err
}

func twinLayerNorm(out, x, weight, bias Tensor, rows, dim int, eps float32) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := make([]float32, rows*dim)
		model.LayerNorm(want, rd.f32(x, rows*dim), rd.f32(weight, dim), rd.f32(bias, dim), rows, dim, float64(eps))
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, rows*dim), want }
	}
}
