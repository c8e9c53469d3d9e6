//go:build js && wasm

package kernels

import (
	"math"

	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// The f16 path: where the adapter has `shader-f16`, the q4 matrix products take kernels
// that dequantize the weights to f16, round the inputs to f16 and sum each q4 word's 8
// products in f16 (the *_f16.wgsl shaders), accumulating those sums in f32. Activations
// stay f32 in memory and norms, softmax and attention stay f32: bench/README.md has the
// error of each kernel against the f32 path at CogVLM's shapes, which decided it.

// UsesF16 says whether the plans built from now on take the f16 kernels: the device was
// granted `shader-f16` (requested whenever the adapter has it) and NoF16 is off.
func (k *Kernels) UsesF16() bool { return k.Dev.Has(gpu.FeatureShaderF16) && !k.NoF16 }

// f16Word is the number of consecutive k whose products an f16 kernel sums in f16: one
// q4 word.
const f16Word = 8

// roundF32ToF16 rounds v to the nearest f16 (ties to even, as WGSL's f16() conversion).
func roundF32ToF16(v float32) float32 { return quant.F16ToFloat32(quant.F16FromFloat32(v)) }

// f16WordError bounds how far a kernel's f16 sum of one word's products can be from the
// twin's (the exact sum rounded once), relative to the sum of the products' magnitudes:
// a sum of n = f16Word products rounded in any order and with or without fused
// multiply-adds is within γ_n = n·u/(1 − n·u) of the exact sum (u = 2⁻¹¹, f16's unit
// roundoff), and the twin's rounding adds u.
var f16WordError = func() float64 {
	u := math.Ldexp(1, -11)
	return f16Word*u/(1-f16Word*u) + u
}()

// MatMulF16 is the f16 kernels' CPU twin: out[m, n] = Σ_k x[m, k]·w[n, k] (+ bias) with x
// and w rounded to f16 as the kernels convert them, each word's (f16Word k) products
// summed exactly and the sum rounded to f16 as the kernels keep it, and those sums added
// in f32. Within a word the GPU rounds each product and partial sum to f16 in an order
// (and with fused multiply-adds) the language leaves open, so the twin's answer is an
// interval: bound, when not nil, receives each output's half-width (f16WordError times
// the magnitudes of its products).
func MatMulF16(out, bound, x, w, bias []float32, m, k, n int) {
	xh, wh := clone(x), clone(w)
	roundF16(xh)
	roundF16(wh)
	for r := range m {
		xr := xh[r*k : (r+1)*k]
		for c := range n {
			wr := wh[c*k : (c+1)*k]
			var acc float32
			var mag float64
			for k0 := 0; k0 < k; k0 += f16Word {
				var p float64
				for j := k0; j < min(k0+f16Word, k); j++ {
					p += float64(xr[j]) * float64(wr[j])
					mag += math.Abs(float64(xr[j]) * float64(wr[j]))
				}
				acc += roundF32ToF16(float32(p))
			}
			if bias != nil {
				acc += bias[c]
			}
			out[r*n+c] = acc
			if bound != nil {
				bound[r*n+c] = float32(f16WordError * mag)
			}
		}
	}
}

// twinMatMulF16 is twinMatMul for the f16 kernels: the twin's value nearest the GPU's
// inside MatMulF16's interval, which RunDebug then compares as any other.
func twinMatMulF16(out, x, bias Tensor, hasBias bool, m, kdim, n int, deq func(rd *reader) []float32) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		var b []float32
		if hasBias {
			b = rd.f32(bias, n)
		}
		want, bound := make([]float32, m*n), make([]float32, m*n)
		MatMulF16(want, bound, rd.f32(x, m*kdim), deq(rd), b, m, kdim, n)
		return func(rd *reader) ([]float32, []float32) {
			got := rd.f32(out, m*n)
			return got, nearestIn(got, want, bound)
		}
	}
}

// nearestIn returns, for each i, the point of [want[i] − bound[i], want[i] + bound[i]]
// nearest got[i] (want[i] itself where got[i] is NaN).
func nearestIn(got, want, bound []float32) []float32 {
	v := make([]float32, len(want))
	for i := range want {
		v[i] = want[i]
		if g := got[i]; g == g {
			v[i] = min(max(g, want[i]-bound[i]), want[i]+bound[i])
		}
	}
	return v
}
