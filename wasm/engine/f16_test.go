//go:build js && wasm

package engine

import (
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/pkg"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

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
	dev := testKernels(t).Dev
	if !dev.Has(gpu.FeatureShaderF16) {
		t.Skip("the adapter has no shader-f16: no f16 path to check")
	}
	k, k32 := newKernels(t, dev), newKernels(t, dev)
	k32.NoF16 = true
	for _, c := range []struct{ name, ref, golden string }{
		{"text", "tiny-q4.text.json", ""},
		{"image", "tiny-q4.image.json", "/repo/testdata/golden/tiny-chat/image.png"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ref := loadGolden(t, testPackages+c.ref)
			in := model.Inputs{InputIDs: ref.InputIDs, TokenTypeIDs: ref.TokenTypeIDs, PositionIDs: ref.PositionIDs}
			var logits [2][][]float32 // [f32, f16][step]
			for path, kk := range []*kernels.Kernels{k32, k} {
				s := testSessionOn(t, kk, "tiny-q4", kernels.KVF32)
				var image *kernels.Tensor
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
		worst = max(worst, maxAbsDiff(logits[1][step], logits[0][step]))
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
