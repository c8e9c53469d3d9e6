package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

const goldenDir = "../testdata/golden"

// The safetensors checkpoint is the loader's source today.
var _ TensorSource = (*safetensors.Checkpoint)(nil)

// goldenCase is one case folder of testdata/golden (see its README.md).
type goldenCase struct {
	name  string
	input struct {
		Image        *string     `json:"image"`
		Query        string      `json:"query"`
		History      [][2]string `json:"history"`
		Template     string      `json:"template"`
		MaxNewTokens int         `json:"max_new_tokens"`
		PromptText   string      `json:"prompt_text"`
	}
	expected struct {
		InputIDs         []int `json:"input_ids"`
		TokenTypeIDs     []int `json:"token_type_ids"`
		PositionIDs      []int `json:"position_ids"`
		GeneratedIDs     []int `json:"generated_ids"`
		VisionExpertMask []int `json:"vision_expert_mask"`
	}
	tensors map[string][]float32 // expected.safetensors
}

func (c *goldenCase) hasImage() bool { return c.input.Image != nil }

// textIDs are the prompt's token ids: expected input_ids after bos and the image tokens,
// so these tests do not depend on the tokenizer package.
func (c *goldenCase) textIDs(cfg Config) []int {
	skip := 1
	if c.hasImage() {
		skip += cfg.NumImageTokens()
	}
	return c.expected.InputIDs[skip:]
}

func loadGoldenCase(t testing.TB, name string) *goldenCase {
	t.Helper()
	dir := filepath.Join(goldenDir, name)
	c := &goldenCase{name: name, tensors: map[string][]float32{}}
	for file, dst := range map[string]any{"input.json": &c.input, "expected.json": &c.expected} {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, dst); err != nil {
			t.Fatalf("%s/%s: %v", name, file, err)
		}
	}
	f, err := safetensors.Open(filepath.Join(dir, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range f.Names() {
		if c.tensors[n], _, err = f.ReadFloat32(n); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// The tiny checkpoint is loaded once per test binary (tiny-text links to the tiny-chat
// model). Tests that run Generate, Prefill or Decode hold goldenMu: a Model runs one
// sequence at a time.
var (
	goldenOnce sync.Once
	goldenM    *Model
	goldenErr  error
	goldenMu   sync.Mutex
)

func goldenModel(t testing.TB) *Model {
	t.Helper()
	goldenOnce.Do(func() {
		dir := filepath.Join(goldenDir, "tiny-chat", "model")
		cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
		if err != nil {
			goldenErr = err
			return
		}
		ckpt, err := safetensors.OpenCheckpoint(dir)
		if err != nil {
			goldenErr = err
			return
		}
		defer ckpt.Close()
		goldenM, goldenErr = Load(cfg, ckpt)
	})
	if goldenErr != nil {
		t.Fatal(goldenErr)
	}
	return goldenM
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		diff := math.Abs(float64(a[i]) - float64(b[i]))
		if diff > d || math.IsNaN(diff) {
			d = diff
		}
	}
	return d
}

// Tolerances of testdata/golden/README.md. The logits bound is the one that also catches a
// tanh-approximated GELU in the vision tower (which moves the logits by ≥ 1.2e-3).
const (
	tolVision = 1e-4
	tolHidden = 1e-4
	tolLogits = 2e-4
)

func TestGoldenPromptAndInputs(t *testing.T) {
	m := goldenModel(t)
	for _, name := range []string{"tiny-chat", "tiny-text"} {
		t.Run(name, func(t *testing.T) {
			c := loadGoldenCase(t, name)
			prompt, err := BuildPrompt(c.input.Template, c.input.Query, c.input.History)
			if err != nil {
				t.Fatal(err)
			}
			if prompt != c.input.PromptText {
				t.Errorf("BuildPrompt = %q, want %q", prompt, c.input.PromptText)
			}
			in := BuildInputs(c.textIDs(m.Config), c.hasImage(), m.Config)
			for _, f := range []struct {
				name      string
				got, want []int
			}{
				{"input_ids", in.InputIDs, c.expected.InputIDs},
				{"token_type_ids", in.TokenTypeIDs, c.expected.TokenTypeIDs},
				{"position_ids", in.PositionIDs, c.expected.PositionIDs},
				{"vision_expert_mask", boolsToInts(in.VisionExpertMask()), c.expected.VisionExpertMask},
			} {
				if !slices.Equal(f.got, f.want) {
					t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
				}
			}
		})
	}
}

func boolsToInts(b []bool) []int {
	out := make([]int, len(b))
	for i, v := range b {
		if v {
			out[i] = 1
		}
	}
	return out
}

func TestGoldenGenerate(t *testing.T) {
	m := goldenModel(t)
	goldenMu.Lock()
	defer goldenMu.Unlock()
	V := m.Config.VocabSize
	for _, name := range []string{"tiny-chat", "tiny-text"} {
		t.Run(name, func(t *testing.T) {
			c := loadGoldenCase(t, name)
			in := Inputs{c.expected.InputIDs, c.expected.TokenTypeIDs, c.expected.PositionIDs}
			pixels := c.tensors["pixel_values"] // nil for text-only
			s := Sampling{MaxNewTokens: c.input.MaxNewTokens, KeepStepLogits: true}
			var streamed []int
			res, err := m.Generate(in, pixels, s, func(id int) bool { streamed = append(streamed, id); return true })
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.GeneratedIDs, c.expected.GeneratedIDs) {
				t.Errorf("generated_ids = %v, want %v", res.GeneratedIDs, c.expected.GeneratedIDs)
			}
			if !slices.Equal(streamed, res.GeneratedIDs) || res.StopReason != StopMaxTokens {
				t.Errorf("onToken saw %v, stop reason %q; want the generated ids and %q", streamed, res.StopReason, StopMaxTokens)
			}
			checks := []struct {
				name      string
				got, want []float32
				tol       float64
			}{
				{"prefill_hidden_last", res.PrefillHiddenLast, c.tensors["prefill_hidden_last"], tolHidden},
				{"prefill_logits_last", res.PrefillLogitsLast, c.tensors["prefill_logits_last"], tolLogits},
				{"step_logits", res.StepLogits, c.tensors["step_logits"], tolLogits},
				{"step_logits[0] vs prefill_logits_last", res.StepLogits[:V], res.PrefillLogitsLast, 0},
			}
			if c.hasImage() {
				checks = append(checks, struct {
					name      string
					got, want []float32
					tol       float64
				}{"vision_out", res.VisionOut, c.tensors["vision_out"], tolVision})
			} else if res.VisionOut != nil {
				t.Errorf("vision_out has %d values without an image", len(res.VisionOut))
			}
			for _, ch := range checks {
				d := maxAbsDiff(ch.got, ch.want)
				t.Logf("%s: max abs diff %.3g (len %d)", ch.name, d, len(ch.got))
				if !(d <= ch.tol) {
					t.Errorf("%s: max abs diff %.3g > %g (len %d, want %d)", ch.name, d, ch.tol, len(ch.got), len(ch.want))
				}
			}
		})
	}
}

// TestGoldenKVCacheVsRecompute recomputes every greedy step from scratch (one Prefill over
// the prompt and the tokens generated so far) and compares with the KV-cache step logits.
func TestGoldenKVCacheVsRecompute(t *testing.T) {
	m := goldenModel(t)
	goldenMu.Lock()
	defer goldenMu.Unlock()
	V := m.Config.VocabSize
	for _, name := range []string{"tiny-chat", "tiny-text"} {
		t.Run(name, func(t *testing.T) {
			c := loadGoldenCase(t, name)
			in := BuildInputs(c.textIDs(m.Config), c.hasImage(), m.Config)
			pixels := c.tensors["pixel_values"]
			res, err := m.Generate(in, pixels, Sampling{MaxNewTokens: c.input.MaxNewTokens, KeepStepLogits: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			full := Inputs{slices.Clone(in.InputIDs), slices.Clone(in.TokenTypeIDs), slices.Clone(in.PositionIDs)}
			var worst float64
			for k, id := range res.GeneratedIDs {
				logits, _, err := m.Prefill(full, res.VisionOut, 0)
				if err != nil {
					t.Fatal(err)
				}
				d := maxAbsDiff(logits, res.StepLogits[k*V:(k+1)*V])
				worst = max(worst, d)
				if d > 1e-4 {
					t.Errorf("step %d: recomputed logits differ from KV-cache logits by %.3g", k, d)
				}
				full.InputIDs = append(full.InputIDs, id)
				full.TokenTypeIDs = append(full.TokenTypeIDs, LanguageTokenType)
				full.PositionIDs = append(full.PositionIDs, full.PositionIDs[len(full.PositionIDs)-1]+1)
			}
			t.Logf("KV cache vs full recompute: max abs logit diff %.3g over %d steps", worst, len(res.GeneratedIDs))
		})
	}
}
