package pkg

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/format"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/model/quant/gptq"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
)

// goldenFloatModel loads the golden checkpoint in float32 with its config, tokenizer and
// the default q4 plan.
func goldenFloatModel(t *testing.T) (*model.Model, *tokenizer.Tokenizer, []format.TensorEntry) {
	t.Helper()
	cfg, err := model.LoadConfig(goldenModelDir + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	ckpt, err := safetensors.OpenCheckpoint(goldenModelDir)
	if err != nil {
		t.Fatal(err)
	}
	defer ckpt.Close()
	m, err := model.Load(cfg, ckpt)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadJSON(filepath.Join(goldenModelDir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PlanManifest(cfg, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m, tok, plan.Tensors
}

// packageLike is the pick that rounds every tensor as the default q4 package stores it,
// the q4 tensors from gptq when given (else round to nearest). It adds each q4 tensor's
// squared error and squared norm to sums.
func packageLike(tensors []format.TensorEntry, gptq map[string]q4Tensor, sums *[2]float64) func(string, []int) fakeQuantize {
	entries := map[string]format.TensorEntry{}
	for _, t := range tensors {
		entries[t.Name] = t
	}
	return func(name string, shape []int) fakeQuantize {
		t := entries[name]
		switch t.Encoding {
		case quant.F16:
			return func(w []float32, _, _ int) {
				for i, v := range w {
					w[i] = quant.F16ToFloat32(quant.F16FromFloat32(v))
				}
			}
		case quant.Q8:
			return func(w []float32, n, k int) {
				qw, sc, err := quant.QuantizeQ8(w, n, k, t.GroupSize)
				if err != nil {
					panic(err)
				}
				quant.DequantizeQ8Into(w, qw, sc, n, k, t.GroupSize)
			}
		case quant.Q4:
			return func(w []float32, n, k int) {
				orig := append([]float32(nil), w...)
				if q, ok := gptq[name]; ok {
					quant.DequantizeQ4Into(w, q.qweight, q.scales, n, k, t.GroupSize)
				} else {
					qw, sc, err := quant.QuantizeQ4(w, n, k, t.GroupSize)
					if err != nil {
						panic(err)
					}
					quant.DequantizeQ4Into(w, qw, sc, n, k, t.GroupSize)
				}
				for i := range w {
					d := float64(w[i]) - float64(orig[i])
					sums[0] += d * d
					sums[1] += float64(orig[i]) * float64(orig[i])
				}
			}
		}
		return nil
	}
}

// TestGPTQDesignGolden measures what calibration buys on the golden model (FORMAT.md
// quotes the figures): the prefill-logits cosine of both golden cases for the default q4
// package with round-to-nearest q4 tensors and with GPTQ ones, the q4 tensors' relative
// RMS weight error, and the spread over calibration sets (other draws of the generated
// images). The calibration prompts are never the golden ones.
func TestGPTQDesignGolden(t *testing.T) {
	m, tok, tensors := goldenFloatModel(t)
	var sums [2]float64
	plain := goldenPrefillCosines(t, packageLike(tensors, nil, &sums))
	plainRMS := math.Sqrt(sums[0] / sums[1])
	t.Logf("round to nearest: %s %.4f, %s %.4f; q4 weight rel. RMS %.4f", goldenCaseNames[0], plain[0], goldenCaseNames[1], plain[1], plainRMS)

	measure := func(seed uint64, sequential bool) (cos []float64, rms float64) {
		cases, err := calibrationCasesSeed(m.Config, tok, DefaultCalibrationImages, seed)
		if err != nil {
			t.Fatal(err)
		}
		m, _, _ := goldenFloatModel(t)
		start := time.Now()
		q, err := gptqQuantize(context.Background(), m, tensors, cases, gptqOptions{damp: gptq.DefaultDamp, sequential: sequential})
		if err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		var sums [2]float64
		cos = goldenPrefillCosines(t, packageLike(tensors, q, &sums))
		rms = math.Sqrt(sums[0] / sums[1])
		t.Logf("GPTQ, calibration set %d, sequential %v: %s %.4f, %s %.4f; q4 weight rel. RMS %.4f (%v)",
			seed, sequential, goldenCaseNames[0], cos[0], goldenCaseNames[1], cos[1], rms, elapsed.Round(time.Millisecond))
		return cos, rms
	}
	gptq, gptqRMS := measure(0, true) // the converter's
	measure(0, false)
	if !(gptqRMS > plainRMS) {
		t.Errorf("GPTQ's weight error %.4f is not above round to nearest's %.4f: is it still weighing the outputs?", gptqRMS, plainRMS)
	}
	for i, name := range goldenCaseNames {
		if !(gptq[i] >= 0.98) {
			t.Errorf("%s: GPTQ prefill cosine %.4f < 0.98", name, gptq[i])
		}
	}
	if testing.Short() {
		return
	}
	lo, hi, mean := [2]float64{1, 1}, [2]float64{}, [2]float64{}
	const draws = 8
	for seed := range uint64(draws) {
		c := gptq
		if seed > 0 {
			c, _ = measure(seed, true)
		}
		for i := range 2 {
			lo[i], hi[i], mean[i] = min(lo[i], c[i]), max(hi[i], c[i]), mean[i]+c[i]/draws
		}
		if !(c[0] > plain[0]) {
			t.Errorf("calibration set %d: GPTQ %s cosine %.4f is not above round to nearest's %.4f", seed, goldenCaseNames[0], c[0], plain[0])
		}
	}
	for i, name := range goldenCaseNames {
		t.Logf("%s over %d calibration sets: GPTQ cosine %.4f to %.4f, mean %.4f (round to nearest %.4f)", name, draws, lo[i], hi[i], mean[i], plain[i])
	}
}
