package model

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Sampling are the generation settings.
type Sampling struct {
	MaxNewTokens      int     // tokens to generate at most (EOS stops earlier)
	Temperature       float64 // 0: greedy argmax; otherwise logits are divided by it
	TopK              int     // keep the k most likely tokens; 0: off
	TopP              float64 // keep the smallest set with probability ≥ p; 0 or 1: off
	RepetitionPenalty float64 // Hugging Face's: divide positive / multiply negative logits of tokens already in the sequence; 0 or 1: off
	Seed              uint64  // seeds the PCG generator: equal settings give equal tokens
	// KeepStepLogits keeps every step's logits in Result.StepLogits (the --dump file):
	// vocab_size floats per generated token.
	KeepStepLogits bool
}

// StopReason says why generation ended.
type StopReason string

const (
	StopEOS       StopReason = "eos"            // the model chose eos_token_id
	StopMaxTokens StopReason = "max_new_tokens" // MaxNewTokens were generated
	StopCallback  StopReason = "callback"       // onToken returned false
)

// Result is a generation's output, with the tensors the CLI's --dump writes.
type Result struct {
	Inputs       Inputs
	GeneratedIDs []int // the generated tokens; a final EOS is not included
	StopReason   StopReason

	VisionOut         []float32 // [NumImageTokens, H]: boi, adapted patches, eoi; nil without an image
	PrefillLogitsLast []float32 // [V] logits at the last prompt token
	PrefillHiddenLast []float32 // [H] final-norm output at the last prompt token
	// StepLogits [len(GeneratedIDs), V] (with KeepStepLogits): row k holds the model's
	// logits (before any sampling transform) that chose GeneratedIDs[k]; row 0 equals
	// PrefillLogitsLast.
	StepLogits []float32

	Stats Stats
}

// Stats are a generation's timings. PrefillTokens ran through the decoder now;
// ReusedTokens, the prompt's first tokens, came from the KV cache of the previous
// generation (PrefillReuse), so the prompt has PrefillTokens + ReusedTokens tokens.
// FirstToken is the time from the request to the first generated token (image, prefill
// and the first choice), the wait a follow-up question saves.
type Stats struct {
	Vision, Prefill, Decode     time.Duration
	PrefillTokens, DecodeTokens int
	ReusedTokens                int
	FirstToken                  time.Duration
}

// Generate runs the whole pipeline: the image (pixels, CHW pixel_values, or nil without
// one) through the vision tower, then the generation loop (RunGeneration) over the CPU
// reference's forward: the prompt through the decoder, then one token at a time until
// EOS, s.MaxNewTokens tokens, or onToken (may be nil) returns false; onToken sees every
// generated token except EOS.
//
// A conversation's next turn costs only its new tokens: the image's rows are kept for
// the same pixels, and the prompt's prefix that the KV cache holds from the previous
// generation is reused (PrefillReuse; not while ObserveLinear is set), with the same
// result as a fresh model's. ResetCache starts over.
func (m *Model) Generate(in Inputs, pixels []float32, s Sampling, onToken func(id int) bool) (*Result, error) {
	begin := time.Now()
	cfg := m.Config
	sampler, err := NewSampler(s, cfg.VocabSize)
	if err != nil {
		return nil, err
	}
	if err := CheckContextLength(len(in.InputIDs), s.MaxNewTokens, cfg); err != nil {
		return nil, err
	}
	if err := checkInputs(in, cfg); err != nil {
		return nil, err
	}
	res := &Result{Inputs: in}
	imageTokens := 0
	for _, t := range in.TokenTypeIDs {
		if t == VisionTokenType {
			imageTokens++
		}
	}
	switch {
	case pixels == nil && imageTokens > 0:
		return nil, fmt.Errorf("inputs have %d image tokens but no pixel values were given", imageTokens)
	case pixels != nil && imageTokens != cfg.NumImageTokens():
		return nil, fmt.Errorf("inputs have %d image tokens, want %d for one image", imageTokens, cfg.NumImageTokens())
	case pixels != nil:
		start := time.Now()
		if res.VisionOut, err = m.encodeImageCached(pixels); err != nil {
			return nil, err
		}
		res.Stats.Vision = time.Since(start)
	}

	f := &cpuForward{m: m, imageRows: res.VisionOut, maxNewTokens: s.MaxNewTokens}
	if err := RunGeneration(f, sampler, in, cfg.EOSTokenID, begin, res, onToken); err != nil {
		return nil, err
	}
	res.PrefillHiddenLast = f.hidden
	return res, nil
}

// cpuForward is the CPU reference's forward for the generation loop.
type cpuForward struct {
	m            *Model
	imageRows    []float32
	maxNewTokens int
	hidden       []float32 // the prefill's final-norm output at the last prompt token
}

func (f *cpuForward) Prefill(in Inputs) (Next, int, error) {
	// an observer sees every row, as without a cache
	logits, hidden, reused, err := f.m.prefill(in, f.imageRows, f.maxNewTokens, f.m.ObserveLinear == nil)
	if err != nil {
		return Next{}, 0, err
	}
	f.hidden = slices.Clone(hidden)
	return Next{Logits: logits}, reused, nil
}

func (f *cpuForward) Decode(id int) (Next, error) {
	logits, err := f.m.Decode(id)
	return Next{Logits: logits}, err
}

// encodeImageCached is EncodeImage that keeps the last image's rows: a follow-up about
// the same pixels (by content) gets a copy instead of another run of the vision tower.
// While ObserveLinear is set the tower always runs, so that calibration sees every layer's
// inputs.
func (m *Model) encodeImageCached(pixels []float32) ([]float32, error) {
	key := imageKey(pixels)
	if m.vision != nil && m.vision.pixels == key && m.ObserveLinear == nil {
		return slices.Clone(m.vision.rows), nil
	}
	rows, err := m.EncodeImage(pixels)
	if err != nil {
		return nil, err
	}
	m.vision = &visionCache{pixels: key, rows: slices.Clone(rows)}
	return rows, nil
}

// Sampler picks the next token from logits. Its buffers are allocated once.
type Sampler struct {
	s     Sampling
	rng   *rand.Rand
	work  []float32 // the transformed logits
	order []int     // token ids, most likely first
	probs []float64
	seen  []bool // repetition penalty: tokens already penalised this step
}

// NewSampler checks the settings for a vocabulary of vocab tokens.
func NewSampler(s Sampling, vocab int) (*Sampler, error) {
	switch {
	case s.MaxNewTokens < 0:
		return nil, fmt.Errorf("max new tokens %d is negative", s.MaxNewTokens)
	case !(s.Temperature >= 0) || math.IsInf(s.Temperature, 1):
		return nil, fmt.Errorf("temperature %v must be 0 (greedy) or positive", s.Temperature)
	case s.TopK < 0:
		return nil, fmt.Errorf("top-k %d is negative", s.TopK)
	case !(s.TopP >= 0 && s.TopP <= 1):
		return nil, fmt.Errorf("top-p %v is outside [0, 1]", s.TopP)
	case !(s.RepetitionPenalty >= 0) || math.IsInf(s.RepetitionPenalty, 1):
		return nil, fmt.Errorf("repetition penalty %v must be positive (1 or 0: off)", s.RepetitionPenalty)
	}
	return &Sampler{
		s:     s,
		rng:   rand.New(rand.NewPCG(s.Seed, 0x636f67766c6d)), // stream constant: "cogvlm"
		work:  make([]float32, vocab),
		order: make([]int, vocab),
		probs: make([]float64, vocab),
		seen:  make([]bool, vocab),
	}, nil
}

// Sample returns the next token for logits [V] (left unchanged) given the ids of the
// sequence so far. The steps are Hugging Face's order: repetition penalty, then greedy
// argmax, or temperature, top-k, top-p and a draw from what is left.
func (sp *Sampler) Sample(logits []float32, seq []int) int {
	if sp.s.Temperature == 0 {
		return sp.SampleWith(logits, seq, 0)
	}
	return sp.SampleWith(logits, seq, sp.Uniform())
}

// Uniform draws the next number in [0, 1) from the sampler's seeded generator: the draw
// Sample makes for a non-greedy step. The GPU sampler takes its draws from here, so both
// give the same tokens for the same seed.
func (sp *Sampler) Uniform() float64 { return sp.rng.Float64() }

// SampleWith is Sample with the step's draw u in [0, 1) given (greedy ignores it).
func (sp *Sampler) SampleWith(logits []float32, seq []int, u01 float64) int {
	s := sp.s
	work := sp.work[:len(logits)]
	copy(work, logits)

	if p := float32(s.RepetitionPenalty); p != 0 && p != 1 {
		for _, id := range seq {
			if sp.seen[id] {
				continue
			}
			sp.seen[id] = true
			if work[id] < 0 {
				work[id] *= p
			} else {
				work[id] /= p
			}
		}
		for _, id := range seq {
			sp.seen[id] = false
		}
	}

	if s.Temperature == 0 {
		return Argmax(work)
	}

	// most likely first; equal logits by id, so the order (and the draw) is reproducible
	order := sp.order[:len(work)]
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(work[b], work[a]), cmp.Compare(a, b))
	})
	keep := len(order)
	if s.TopK > 0 && s.TopK < keep {
		// ties with the k-th logit stay, as in Hugging Face's TopKLogitsWarper
		keep = s.TopK
		for keep < len(order) && work[order[keep]] == work[order[s.TopK-1]] {
			keep++
		}
	}

	// softmax of logits/temperature over the kept tokens
	probs := sp.probs[:keep]
	maxv := float64(work[order[0]])
	var sum float64
	for i, id := range order[:keep] {
		probs[i] = math.Exp((float64(work[id]) - maxv) / s.Temperature)
		sum += probs[i]
	}
	if s.TopP > 0 && s.TopP < 1 {
		// smallest prefix whose probability reaches top-p (at least one token)
		var cum float64
		for i, p := range probs {
			cum += p / sum
			if cum >= s.TopP {
				keep = i + 1
				break
			}
		}
		probs = probs[:keep]
		sum = 0
		for _, p := range probs {
			sum += p
		}
	}

	u := u01 * sum
	for i, p := range probs {
		u -= p
		if u < 0 {
			return order[i]
		}
	}
	return order[keep-1] // u ≈ sum after rounding
}
