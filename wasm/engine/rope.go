//go:build js && wasm

package engine

import "github.com/cogvlm-web/cogvlm-web/model"

// RoPETable returns vec2(cos, sin) pairs [maxPos, headDim/2] for rope.wgsl and
// qkv_rope.wgsl from model.RoPECosSin, so the GPU rotates by exactly the CPU's
// coefficients.
func RoPETable(maxPos, headDim int, base float64) []float32 {
	half := headDim / 2
	t := make([]float32, 0, maxPos*half*2)
	for pos := range maxPos {
		for i := range half {
			cos, sin := model.RoPECosSin(pos, i, headDim, base)
			t = append(t, cos, sin)
		}
	}
	return t
}
