//go:build js && wasm

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// f16Error is the f16 path's error against the f32 path on one output: the largest
// absolute difference, that over the largest f32 output, and the RMS difference over the
// RMS output.
type f16Error struct{ maxAbs, maxRel, rmsRel float64 }

func (e f16Error) String() string {
	return fmt.Sprintf("max abs %.2e, max rel %.2e, rms rel %.2e", e.maxAbs, e.maxRel, e.rmsRel)
}

func compareF16(got, ref []float32) f16Error {
	var e f16Error
	var scale, d2, r2 float64
	for i := range ref {
		d := math.Abs(float64(got[i]) - float64(ref[i]))
		if !(d <= e.maxAbs) { // NaN wins
			e.maxAbs = d
		}
		scale = max(scale, math.Abs(float64(ref[i])))
		d2 += d * d
		r2 += float64(ref[i]) * float64(ref[i])
	}
	e.maxRel, e.rmsRel = e.maxAbs/scale, math.Sqrt(d2/r2)
	return e
}

// f16MaxRel bounds each f16 kernel's error against the f32 path, relative to the largest
// output (compareF16). Rounding x and the weights to f16 costs 2⁻¹² relative on each
// product, a word's f16 sum a few more ulps: at K = 11008 the measured worst is below
// 5e-4 (bench/README.md); 2e-3 leaves room for another compiler's order of the sums.
const f16MaxRel = 2e-3

// TestF16Error measures the f16 q4 kernels against the f32 ones at CogVLM's shapes
// (bench/README.md's error table is this test's log) and checks each against its twin.
func TestF16Error(t *testing.T) {
	k := kernels(t)
	if !k.Dev.Has(gpu.FeatureShaderF16) {
		t.Skip("the adapter has no shader-f16: no f16 kernels to measure")
	}
	if testing.Short() {
		t.Skip("real sizes take a while on a CPU adapter")
	}
	defer func(old bool) { k.NoF16, k.PrefillQ4 = old, PrefillAuto }(k.NoF16)
	r := rand.New(rand.NewPCG(16, 1))
	for _, sh := range []struct {
		m, k, n int
		kind    PrefillQ4
	}{
		{1, 4096, 4096, PrefillAuto}, {1, 4096, 11008, PrefillAuto}, {1, 11008, 4096, PrefillAuto}, {1, 4096, 32000, PrefillAuto},
		{17, 4096, 4096, PrefillRows}, {17, 4096, 11008, PrefillRows}, {17, 11008, 4096, PrefillRows},
		{17, 4096, 4096, PrefillTiled}, {17, 4096, 11008, PrefillTiled}, {17, 11008, 4096, PrefillTiled},
	} {
		x := randn(r, sh.m*sh.k, 1)
		q, s := randomQ4(r, sh.n, sh.k, 32)
		xt, qt, st := upload(t, k, "x", x), uploadU32(t, k, "qweight", q), uploadBytes(t, k, "scales", u16Bytes(s))
		out := output(t, k, "out", sh.m*sh.n)
		k.PrefillQ4 = sh.kind
		k.NoF16 = true
		ref := run(t, k, out, sh.m*sh.n, must(t)(k.MatMulQ4(out, xt, qt, st, Tensor{}, sh.m, sh.k, sh.n, 32)))
		k.NoF16 = false
		step := must(t)(k.MatMulQ4(out, xt, qt, st, Tensor{}, sh.m, sh.k, sh.n, 32))
		got := run(t, k, out, sh.m*sh.n, step)
		for _, b := range []Tensor{xt, qt, st, out} {
			b.Buf.Destroy()
		}
		e := compareF16(got, ref)
		t.Logf("%-28s m=%-2d k=%-5d n=%-5d vs f32: %v", step.Label, sh.m, sh.k, sh.n, e)
		if !(e.maxRel <= f16MaxRel) {
			t.Errorf("%s m=%d k=%d n=%d: the f16 kernel is off the f32 one by %v, beyond %g of the largest output", step.Label, sh.m, sh.k, sh.n, e, f16MaxRel)
		}
		if sh.m > 1 {
			// the prefill kernels meet their twin in TestMatMulQ4 at K = 4096 and 11008;
			// here the twin of 17 rows would take minutes in WebAssembly
			continue
		}
		closeF16(t, fmt.Sprintf("%s m=%d k=%d n=%d vs its twin", step.Label, sh.m, sh.k, sh.n), got, x, quant.DequantizeQ4(q, s, sh.n, sh.k, 32), nil, sh.m, sh.k, sh.n)
	}
}
