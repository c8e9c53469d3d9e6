package model

import (
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// logitsFor returns logits whose softmax is probs.
func logitsFor(probs ...float64) []float32 {
	out := make([]float32, len(probs))
	for i, p := range probs {
		out[i] = float32(math.Log(p))
	}
	return out
}

func newSampler(t *testing.T, s Sampling, vocab int) *Sampler {
	t.Helper()
	sp, err := NewSampler(s, vocab)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestSampleGreedy(t *testing.T) {
	sp := newSampler(t, Sampling{}, 5)
	logits := []float32{0.5, -1, 3, 2.9, 3}
	if got := sp.Sample(logits, nil); got != 2 { // ties go to the lower id
		t.Errorf("greedy = %d, want 2", got)
	}
	if !slices.Equal(logits, []float32{0.5, -1, 3, 2.9, 3}) {
		t.Error("Sample changed the logits")
	}
}

func TestSampleTopK1IsGreedy(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	greedy := newSampler(t, Sampling{}, 1000)
	for seed := range uint64(20) {
		logits := randSlice(r, 1000)
		sp := newSampler(t, Sampling{Temperature: 1.5, TopK: 1, Seed: seed}, 1000)
		if got, want := sp.Sample(logits, nil), greedy.Sample(logits, nil); got != want {
			t.Fatalf("seed %d: top-k 1 sampled %d, greedy %d", seed, got, want)
		}
	}
}

func TestSampleSeedReproducible(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	logits := randSlice(r, 500)
	draw := func(seed uint64) []int {
		sp := newSampler(t, Sampling{Temperature: 1, TopP: 0.95, TopK: 200, Seed: seed}, 500)
		var ids []int
		for range 64 {
			ids = append(ids, sp.Sample(logits, nil))
		}
		return ids
	}
	a, b, c := draw(42), draw(42), draw(43)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different draws:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 42 and 43 drew the same 64 tokens: %v", a)
	}
}

// TestSampleSupport: top-p and top-k remove exactly the tokens they should, and the
// draws follow the remaining probabilities.
func TestSampleSupport(t *testing.T) {
	probs := []float64{0.05, 0.5, 0.15, 0.3}
	for _, tc := range []struct {
		name    string
		s       Sampling
		support []int
		share   map[int]float64 // expected share of draws, renormalised
	}{
		{"top-p 0.7", Sampling{Temperature: 1, TopP: 0.7}, []int{1, 3}, map[int]float64{1: 0.625, 3: 0.375}},
		{"top-p 0.79", Sampling{Temperature: 1, TopP: 0.79}, []int{1, 3}, nil},
		{"top-p 0.81", Sampling{Temperature: 1, TopP: 0.81}, []int{1, 2, 3}, nil},
		{"top-k 3", Sampling{Temperature: 1, TopK: 3}, []int{1, 2, 3}, map[int]float64{1: 0.5 / 0.95, 2: 0.15 / 0.95, 3: 0.3 / 0.95}},
		{"top-p 0.4 keeps the top token", Sampling{Temperature: 1, TopP: 0.4}, []int{1}, nil},
		{"no filter", Sampling{Temperature: 1}, []int{0, 1, 2, 3}, map[int]float64{0: 0.05, 1: 0.5, 2: 0.15, 3: 0.3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.Seed = 99
			sp := newSampler(t, tc.s, len(probs))
			const draws = 20000
			count := map[int]int{}
			for range draws {
				count[sp.Sample(logitsFor(probs...), nil)]++
			}
			got := slices.Sorted(maps.Keys(count))
			if !slices.Equal(got, tc.support) {
				t.Errorf("drew %v (%v), want support %v", got, count, tc.support)
			}
			for id, want := range tc.share {
				if share := float64(count[id]) / draws; math.Abs(share-want) > 0.02 {
					t.Errorf("token %d drawn %.3f of the time, want %.3f", id, share, want)
				}
			}
		})
	}
}

func TestSampleTemperature(t *testing.T) {
	// temperature 0.5 squares the probabilities before renormalising: 0.2, 0.8 → 1/17, 16/17
	sp := newSampler(t, Sampling{Temperature: 0.5, Seed: 5}, 2)
	count := 0
	const draws = 20000
	for range draws {
		count += sp.Sample(logitsFor(0.2, 0.8), nil)
	}
	if share := float64(count) / draws; math.Abs(share-16.0/17) > 0.01 {
		t.Errorf("token 1 drawn %.3f of the time, want %.3f", share, 16.0/17)
	}
}

func TestSampleRepetitionPenalty(t *testing.T) {
	sp := newSampler(t, Sampling{RepetitionPenalty: 2}, 4)
	// token 0 (seen) 2 → 1 loses to token 1 at 1.5; token 3 (seen) −1 → −2
	logits := []float32{2, 1.5, -3, -1}
	if got := sp.Sample(logits, []int{0, 0, 3}); got != 1 {
		t.Errorf("with penalty: %d, want 1", got)
	}
	// a seen negative logit gets more negative, so token 3 does not win over token 2
	if got := sp.Sample([]float32{-5, -5, -1.5, -1}, []int{3}); got != 2 {
		t.Errorf("negative penalised: %d, want 2", got)
	}
	// the seen marks are cleared between calls
	if got := sp.Sample(logits, nil); got != 0 {
		t.Errorf("without history: %d, want 0", got)
	}
}

func TestNewSamplerErrors(t *testing.T) {
	for _, tc := range []struct {
		s      Sampling
		errHas string
	}{
		{Sampling{MaxNewTokens: -1}, "max new tokens -1"},
		{Sampling{Temperature: -0.5}, "temperature -0.5"},
		{Sampling{Temperature: math.NaN()}, "temperature NaN"},
		{Sampling{TopK: -2}, "top-k -2"},
		{Sampling{TopP: 1.5}, "top-p 1.5"},
		{Sampling{RepetitionPenalty: -1}, "repetition penalty -1"},
	} {
		if _, err := NewSampler(tc.s, 10); err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%+v: error %v, want one containing %q", tc.s, err, tc.errHas)
		}
	}
}

// goldenText is tiny-text's prompt with the golden model.
func goldenText(t *testing.T) (*Model, Inputs, []int) {
	m := goldenModel(t)
	c := loadGoldenCase(t, "tiny-text")
	return m, BuildInputs(c.textIDs(m.Config), false, m.Config), c.expected.GeneratedIDs
}

func TestGenerateStops(t *testing.T) {
	m, in, want := goldenText(t)
	goldenMu.Lock()
	defer goldenMu.Unlock()

	// onToken returning false stops after that token
	var seen []int
	res, err := m.Generate(in, nil, Sampling{MaxNewTokens: 12}, func(id int) bool {
		seen = append(seen, id)
		return len(seen) < 5
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.GeneratedIDs, want[:5]) || res.StopReason != StopCallback || res.StepLogits != nil {
		t.Errorf("callback stop: ids %v, reason %q, %d step logits; want %v, %q, none",
			res.GeneratedIDs, res.StopReason, len(res.StepLogits), want[:5], StopCallback)
	}

	// EOS stops without being returned: pretend the 4th greedy token is EOS
	eos := *m
	eos.dec = nil
	eos.Config.EOSTokenID = want[3]
	res, err = eos.Generate(in, nil, Sampling{MaxNewTokens: 12, KeepStepLogits: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.GeneratedIDs, want[:3]) || res.StopReason != StopEOS || len(res.StepLogits) != 3*m.Config.VocabSize {
		t.Errorf("EOS stop: ids %v, reason %q, %d step logits; want %v, %q, 3 rows",
			res.GeneratedIDs, res.StopReason, len(res.StepLogits), want[:3], StopEOS)
	}
	if res.Stats.PrefillTokens != len(in.InputIDs) || res.Stats.DecodeTokens != 3 {
		t.Errorf("stats %+v: want %d prefill tokens and 3 decode steps", res.Stats, len(in.InputIDs))
	}

	// no new tokens: just the prefill
	res, err = m.Generate(in, nil, Sampling{}, nil)
	if err != nil || len(res.GeneratedIDs) != 0 || len(res.PrefillLogitsLast) != m.Config.VocabSize {
		t.Errorf("max 0 tokens: %v, %v", res, err)
	}
}

func TestGenerateSampledIsReproducible(t *testing.T) {
	m, in, _ := goldenText(t)
	goldenMu.Lock()
	defer goldenMu.Unlock()
	s := Sampling{MaxNewTokens: 10, Temperature: 0.9, TopP: 0.9, TopK: 40, RepetitionPenalty: 1.1, Seed: 7}
	a, err := m.Generate(in, nil, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Generate(in, nil, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.GeneratedIDs, b.GeneratedIDs) || len(a.GeneratedIDs) != 10 {
		t.Errorf("seed 7 gave %v then %v", a.GeneratedIDs, b.GeneratedIDs)
	}
}

func TestGenerateErrors(t *testing.T) {
	m := goldenModel(t)
	goldenMu.Lock()
	defer goldenMu.Unlock()
	cfg := m.Config
	chat := loadGoldenCase(t, "tiny-chat")
	imageIn := BuildInputs(chat.textIDs(cfg), true, cfg)
	textIn := BuildInputs([]int{450, 4996}, false, cfg)
	long := BuildInputs(make([]int, 2040), false, cfg) // 2041 tokens
	pixels := chat.tensors["pixel_values"]
	for _, tc := range []struct {
		name   string
		in     Inputs
		pixels []float32
		s      Sampling
		errHas string
	}{
		{"context length", long, nil, Sampling{MaxNewTokens: 8}, "prompt of 2041 tokens + 8 new tokens exceeds max_position_embeddings 2048"},
		{"image tokens without pixels", imageIn, nil, Sampling{}, "inputs have 6 image tokens but no pixel values were given"},
		{"pixels without image tokens", textIn, pixels, Sampling{}, "inputs have 0 image tokens, want 6 for one image"},
		{"wrong pixel count", imageIn, pixels[:100], Sampling{}, "pixel values have 100 elements, want 2352 (3×28×28 CHW)"},
		{"token outside vocabulary", BuildInputs([]int{32000}, false, cfg), nil, Sampling{}, "input_ids[1] = 32000 is outside the vocabulary [0, 32000)"},
		{"ragged inputs", Inputs{[]int{1, 2}, []int{0}, []int{0, 1}}, nil, Sampling{}, "input_ids has 2 entries but token_type_ids 1 and position_ids 2"},
		{"bad token type", Inputs{[]int{1}, []int{2}, []int{0}}, nil, Sampling{}, "token_type_ids[0] = 2"},
		{"empty", Inputs{}, nil, Sampling{}, "input_ids is empty"},
		{"bad sampling", textIn, nil, Sampling{TopP: -1}, "top-p -1"},
	} {
		if _, err := m.Generate(tc.in, tc.pixels, tc.s, nil); err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.errHas)
		}
	}

	// Decode needs a Prefill with room for the token
	fresh := &Model{Config: cfg, Weights: m.Weights}
	if _, err := fresh.Decode(5); err == nil || !strings.Contains(err.Error(), "before Prefill") {
		t.Errorf("Decode before Prefill: %v", err)
	}
	if _, _, err := fresh.Prefill(textIn, nil, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Decode(32000); err == nil || !strings.Contains(err.Error(), "token id 32000") {
		t.Errorf("Decode of a bad id: %v", err)
	}
	if _, err := fresh.Decode(5); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Decode(6); err == nil || !strings.Contains(err.Error(), "KV cache full at 4 tokens") {
		t.Errorf("Decode past the reserved room: %v", err)
	}
}
