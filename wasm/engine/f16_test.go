//go:build js && wasm

package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/pkg"
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

// top2 returns the index of the largest logit and its margin over the second.
func top2(l []float32) (best int, margin float64) {
	second := -1
	for i, v := range l {
		switch {
		case v > l[best]:
			best, second = i, best
		case i != best && (second < 0 || v > l[second]):
			second = i
		}
	}
	return best, float64(l[best]) - float64(l[second])
}

// TestF16Golden runs the golden cases from the q4 package on the f16 path and on the f32
// path of the same device, step by step on the f32 path's tokens: the prefill logits agree
// to a cosine of 0.9999, and every step whose f32 top-2 margin exceeds twice the f16 path's
// largest logit error over the case (so that no logit move of that size could swap the
// two) picks the same token, which is the CPU reference's golden token. Steps below that
// margin are logged (they are where f16 may take another path).
func TestF16Golden(t *testing.T) {
	dev := kernels(t).Dev
	if !dev.Has(gpu.FeatureShaderF16) {
		t.Skip("the adapter has no shader-f16: no f16 path to check")
	}
	k, k32 := NewKernels(dev), NewKernels(dev)
	k32.NoF16 = true
	for _, c := range []struct{ name, ref, golden string }{
		{"text", "tiny-q4.text.json", ""},
		{"image", "tiny-q4.image.json", "/repo/testdata/golden/tiny-chat/image.png"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ref := loadGolden(t, testPackages+c.ref)
			in := model.Inputs{InputIDs: ref.InputIDs, TokenTypeIDs: ref.TokenTypeIDs, PositionIDs: ref.PositionIDs}
			var logits [2][][]float32 // [f32, f16][step]
			for path, kk := range []*Kernels{k32, k} {
				s := testSessionOn(t, kk, "tiny-q4", KVF32)
				var image *Tensor
				if c.golden != "" {
					if err := s.encodeImage(fetchBytes(t, c.golden)); err != nil {
						t.Fatal(err)
					}
					image = &s.vision.Out
				}
				if _, err := s.dec.Prefill(in, image); err != nil {
					t.Fatal(err)
				}
				for step := 0; ; step++ {
					l, err := s.dec.Logits()
					if err != nil {
						t.Fatal(err)
					}
					logits[path] = append(logits[path], l)
					if step+1 == len(ref.GeneratedIDs) {
						break
					}
					// both paths go on from the CPU reference's token
					if err := s.dec.SetToken(ref.GeneratedIDs[step]); err != nil {
						t.Fatal(err)
					}
					if _, err := s.dec.Decode(); err != nil {
						t.Fatal(err)
					}
				}
			}
			checkF16Paths(t, ref.GeneratedIDs, logits)
		})
	}
}

// checkF16Paths compares the logits of the f32 path (logits[0]) and the f16 path
// (logits[1]) at each step, both teacher-forced on the CPU reference's tokens (golden): the
// prefill logits agree to a cosine of 0.9999; the f32 path picks the golden token at every
// step; the f16 path picks the same token as the f32 path wherever the f32 top-2 margin
// exceeds twice the f16 path's largest logit error over the steps (no logit move of that
// size could swap the two), and the steps below that margin are logged. It returns the
// prefill cosine, the largest logit error and each step's f32 top-2 margin.
func checkF16Paths(t *testing.T, golden []int, logits [2][][]float32) (cos, worst float64, margins []float64) {
	t.Helper()
	if cos = pkg.Cosine(logits[0][0], logits[1][0]); !(cos >= 0.9999) {
		t.Errorf("prefill logits: cosine %.7f between the f16 and f32 paths, want ≥ 0.9999", cos)
	} else {
		t.Logf("prefill logits: cosine %.7f between the f16 and f32 paths", cos)
	}
	for step := range logits[0] {
		worst = max(worst, compareF16(logits[1][step], logits[0][step]).maxAbs)
	}
	t.Logf("largest logit error of the f16 path over %d steps: %.3g", len(logits[0]), worst)
	for step, l32 := range logits[0] {
		best32, margin := top2(l32)
		best16, _ := top2(logits[1][step])
		margins = append(margins, margin)
		if best32 != golden[step] {
			t.Errorf("step %d: the f32 path picks %d, the CPU reference %d", step, best32, golden[step])
		}
		if margin <= 2*worst {
			t.Logf("step %d: f32 top-2 margin %.3g is within twice the f16 error: f16 picks %d, f32 %d", step, margin, best16, best32)
		} else if best16 != best32 {
			t.Errorf("step %d: the f16 path picks %d, the f32 path %d with a margin of %.3g", step, best16, best32, margin)
		}
	}
	return cos, worst, margins
}
