//go:build js && wasm

package engine

import "math"

// RoPETable returns vec2(cos, sin) pairs [maxPos, headDim/2] for rope.wgsl, computed the
// way model.RoPE computes its angles (frequency and angle rounded to float32, cos/sin in
// float64), so the GPU rotation uses exactly the CPU's coefficients.
func RoPETable(maxPos, headDim int, base float64) []float32 {
	half := headDim / 2
	t := make([]float32, 0, maxPos*half*2)
	for pos := range maxPos {
		for i := range half {
			invFreq := float32(1 / math.Pow(base, float64(2*i)/float64(headDim)))
			angle := float64(float32(pos) * invFreq)
			t = append(t, float32(math.Cos(angle)), float32(math.Sin(angle)))
		}
	}
	return t
}
