//go:build js && wasm

package kernels

import "fmt"

// RoPE rotates x [rows, heads, headDim] in place, row r at position positions[r], with
// the cos/sin table [maxPos, headDim/2] (see RoPETable). CPU twin: model.RoPE.
func (k *Kernels) RoPE(x, positions, table Tensor, rows, heads, headDim int) (Step, error) {
	if headDim%2 != 0 {
		return Step{}, fmt.Errorf("rope: head_dim %d is odd", headDim)
	}
	pairs := rows * heads * headDim / 2
	s, err := k.step("rope", PipelineKey{Shader: "rope.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(rows, heads, headDim, 0), elementwiseGroups(pairs), 1, 1, positions, table, x)
	return s.with(twinRoPE(x, positions, rows, heads, headDim)), err
}
