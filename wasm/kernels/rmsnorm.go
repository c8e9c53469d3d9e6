//go:build js && wasm

package kernels

import (
	"fmt"

	"github.com/cogvlm-web/cogvlm-web/model"
)

// RMSNorm: out = x / sqrt(mean(x²) + eps) * weight, rows × dim; x and out may start at any
// float. CPU twin: model.RMSNorm.
func (k *Kernels) RMSNorm(out, x, weight Tensor, rows, dim int, eps float32) (Step, error) {
	if rows < 1 || dim < 1 {
		return Step{}, fmt.Errorf("rmsnorm: bad shape %d×%d", rows, dim)
	}
	var tw twin
	if debugTwins {
		tw = twinRMSNorm(out, x, weight, rows, dim, eps)
	}
	x, xStart := k.bindFrom(x) // the decoder's last prompt row starts anywhere
	out, outStart := k.bindFrom(out)
	s, err := k.step("rmsnorm", PipelineKey{Shader: "rmsnorm.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", rowWG}, offsets(xStart, outStart)}},
		params(rows, dim, eps, xStart, outStart), uint32(rows), 1, 1, x, weight, out)
	return s.with(tw), err
}

func twinRMSNorm(out, x, weight Tensor, rows, dim int, eps float32) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := make([]float32, rows*dim)
		model.RMSNorm(want, rd.f32(x, rows*dim), rd.f32(weight, dim), rows, dim, float64(eps))
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, rows*dim), want }
	}
}
