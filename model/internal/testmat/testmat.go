// Package testmat holds what the tests of model/quant and model/quant/gptq both draw and
// measure: Gaussian weights and the relative RMS error of an approximation.
package testmat

import (
	"math"
	"math/rand/v2"
)

// Gaussian is n values drawn from N(0, std²).
func Gaussian(r *rand.Rand, n int, std float64) []float32 {
	w := make([]float32, n)
	for i := range w {
		w[i] = float32(r.NormFloat64() * std)
	}
	return w
}

// RelRMS is ‖want − got‖ / ‖want‖.
func RelRMS(want, got []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(want[i]) - float64(got[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num / den)
}
