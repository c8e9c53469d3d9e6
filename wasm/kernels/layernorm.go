//go:build js && wasm

package kernels

import "fmt"

// LayerNorm: out = (x − mean)/sqrt(var + eps) * weight + bias. CPU twin: model.LayerNorm.
func (k *Kernels) LayerNorm(out, x, weight, bias Tensor, rows, dim int, eps float32) (Step, error) {
	if rows < 1 || dim < 1 {
		return Step{}, fmt.Errorf("layernorm: bad shape %d×%d", rows, dim)
	}
	s, err := k.step("layernorm", PipelineKey{Shader: "layernorm.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", rowWG}}},
		params(rows, dim, eps, 0), uint32(rows), 1, 1, x, weight, bias, out)
	return s.with(twinLayerNorm(out, x, weight, bias, rows, dim, eps)), err
}
