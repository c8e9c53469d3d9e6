package pkg

import (
	"fmt"
	"math"
	"reflect"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/format"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
)

// AccuracyCase is one prompt that Accuracy runs through the reference and the package.
type AccuracyCase struct {
	Name   string
	Inputs model.Inputs // model.BuildInputs of the prompt's token ids
	Pixels []float32    // pixel_values (CHW), or nil for a text-only prompt
	Steps  int          // greedy steps to compare, the prefill being the first (≥ 1)
}

// CaseAccuracy is how closely the package follows the reference on one case. Every step
// after the prefill is teacher-forced: both models are fed the reference's greedy
// tokens, so one early disagreement does not make all later steps incomparable.
type CaseAccuracy struct {
	Name          string
	PrefillCosine float64 // cosine similarity of the prefill logits, package vs reference
	MinCosine     float64 // the lowest cosine over all steps
	MaxAbsDiff    float64 // the largest logit difference over all steps
	Top1Agree     int     // steps whose argmax is the reference's greedy token
	Steps         int     // steps compared (fewer than asked when the reference stops at EOS)
}

// AccuracyReport is Accuracy's result.
type AccuracyReport struct {
	Cases []CaseAccuracy
	// Stats sums the package's tensors per encoding; Stats[""] is the whole package, and
	// Stats[""].BitsPerWeight() its storage per parameter.
	Stats map[quant.Encoding]format.EncodingStats
}

// Accuracy compares the package in pkgDir with the reference in refDir (a Hugging Face
// checkpoint, or another package such as the f32 one) on cases: per case the cosine
// similarity of the prefill logits and the top-1 agreement over the greedy steps; and the
// package's bits per weight. The two models are loaded one after the other, never
// together: memory is that of the reference (a checkpoint is read into float32, about 70
// GB for CogVLM-17B; a package is held as stored), then of the package.
//
// The CLI's `cogvlm accuracy --ref HF_DIR --pkg PKG_DIR` is DefaultAccuracyCases for the
// package's config and tokenizer, then Accuracy(ref, pkg, cases).
func Accuracy(refDir, pkgDir string, cases []AccuracyCase) (*AccuracyReport, error) {
	for _, c := range cases {
		if c.Steps < 1 {
			return nil, fmt.Errorf("accuracy case %q: steps %d must be at least 1", c.Name, c.Steps)
		}
	}
	p, err := Open(pkgDir)
	if err != nil {
		return nil, err
	}
	report := &AccuracyReport{Stats: p.Manifest().Stats()}
	p.Close()

	refRuns, err := referenceRuns(refDir, p.Config(), cases)
	if err != nil {
		return nil, err
	}
	m, err := OpenModel(pkgDir)
	if err != nil {
		return nil, err
	}
	V := m.Config.VocabSize
	for i, c := range cases {
		r := refRuns[i]
		var vision []float32
		if c.Pixels != nil {
			if vision, err = m.EncodeImage(c.Pixels); err != nil {
				return nil, fmt.Errorf("accuracy case %q: package: %v", c.Name, err)
			}
		}
		logits, _, err := m.Prefill(c.Inputs, vision, c.Steps)
		if err != nil {
			return nil, fmt.Errorf("accuracy case %q: package: %v", c.Name, err)
		}
		acc := CaseAccuracy{Name: c.Name, MinCosine: math.Inf(1)}
		steps := max(len(r.GeneratedIDs), 1) // an immediate EOS still has prefill logits
		for k := range steps {
			if k > 0 {
				if logits, err = m.Decode(r.GeneratedIDs[k-1]); err != nil {
					return nil, fmt.Errorf("accuracy case %q: package step %d: %v", c.Name, k, err)
				}
			}
			want := r.PrefillLogitsLast
			if k > 0 {
				want = r.StepLogits[k*V : (k+1)*V]
			}
			// a NaN would make every figure NaN and compare false: refuse instead of
			// reporting it (weights are checked when loading, activations can still
			// overflow)
			for _, l := range []struct {
				who    string
				logits []float32
			}{{"reference", want}, {"package", logits}} {
				if i := firstNonFinite(l.logits); i >= 0 {
					return nil, fmt.Errorf("accuracy case %q: %s step %d: logit %d is %g, the model's activations overflowed", c.Name, l.who, k, i, l.logits[i])
				}
			}
			cos := Cosine(logits, want)
			if k == 0 {
				acc.PrefillCosine = cos
			}
			acc.MinCosine = min(acc.MinCosine, cos)
			acc.MaxAbsDiff = max(acc.MaxAbsDiff, maxAbsDiff(logits, want))
			if model.Argmax(logits) == model.Argmax(want) {
				acc.Top1Agree++
			}
			acc.Steps++
		}
		report.Cases = append(report.Cases, acc)
	}
	return report, nil
}

// referenceRuns generates every case greedily with the reference model, keeping each
// step's logits. The model is dropped on return, before the package's is loaded.
func referenceRuns(refDir string, cfg model.Config, cases []AccuracyCase) ([]*model.Result, error) {
	ref, err := OpenModel(refDir)
	if err != nil {
		return nil, err
	}
	if !reflect.DeepEqual(ref.Config, cfg) {
		return nil, fmt.Errorf("%s holds a different model config than the package", refDir)
	}
	runs := make([]*model.Result, len(cases))
	for i, c := range cases {
		s := model.Sampling{MaxNewTokens: c.Steps, KeepStepLogits: true}
		if runs[i], err = ref.Generate(c.Inputs, c.Pixels, s, nil); err != nil {
			return nil, fmt.Errorf("accuracy case %q: reference: %v", c.Name, err)
		}
	}
	return runs, nil
}

// DefaultAccuracyCases are the prompts `cogvlm accuracy` uses: a text-only completion
// and a chat question about a synthetic image (smooth colour gradients with a checker
// pattern, already normalised), 8 greedy steps each.
func DefaultAccuracyCases(cfg model.Config, tok *tokenizer.Tokenizer) ([]AccuracyCase, error) {
	const steps = 8
	text := tok.Encode("The quick brown fox")
	chat, err := model.BuildPrompt("chat", "What is in this image?", nil)
	if err != nil {
		return nil, err
	}
	return []AccuracyCase{
		{Name: "text", Inputs: model.BuildInputs(text, false, cfg), Steps: steps},
		{Name: "image", Inputs: model.BuildInputs(tok.Encode(chat), true, cfg), Pixels: syntheticPixels(cfg), Steps: steps},
	}, nil
}

// syntheticPixels is a deterministic CHW image in the normalised range of real ones.
func syntheticPixels(cfg model.Config) []float32 {
	c, s := cfg.Vision.InChannels, cfg.Vision.ImageSize
	px := make([]float32, c*s*s)
	for ch := range c {
		for y := range s {
			for x := range s {
				v := math.Sin(float64(x*(ch+1))/float64(s)*math.Pi) + float64(y)/float64(s) - 0.5
				if (x/7+y/7)%2 == 0 {
					v += 0.5
				}
				px[(ch*s+y)*s+x] = float32(v)
			}
		}
	}
	return px
}

// Cosine is the cosine similarity of a and b (the accuracy checks' measure of logits).
func Cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// firstNonFinite is the index of the first NaN or infinite value of x, or −1.
func firstNonFinite(x []float32) int {
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return i
		}
	}
	return -1
}

func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}
