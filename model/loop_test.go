package model

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// scriptForward is a Forward that chooses its tokens itself (as the GPU's argmax does)
// from a script, or hands out one-hot logits for them, and records what it is fed.
type scriptForward struct {
	script []int // the tokens it chooses, in order
	logits bool  // hand out logits instead of tokens
	reused int
	fed    []int
	step   int
	failAt int // Decode fails at this step (0: never)
}

func (f *scriptForward) next() Next {
	id := f.script[f.step]
	f.step++
	if !f.logits {
		return Next{Token: id}
	}
	l := make([]float32, 8)
	l[id] = 1
	return Next{Logits: l}
}

func (f *scriptForward) Prefill(in Inputs) (Next, int, error) { return f.next(), f.reused, nil }

func (f *scriptForward) Decode(id int) (Next, error) {
	f.fed = append(f.fed, id)
	if f.failAt > 0 && f.step == f.failAt {
		return Next{}, errors.New("device lost")
	}
	return f.next(), nil
}

// TestRunGeneration: the loop's stop rules, feeding, stats and kept logits, for a forward
// that chooses its tokens and one that hands out logits (greedy sampling picks the same).
func TestRunGeneration(t *testing.T) {
	in := Inputs{InputIDs: []int{1, 5, 6, 7}, TokenTypeIDs: []int{0, 0, 0, 0}, PositionIDs: []int{0, 1, 2, 3}}
	const eos = 2
	for _, tc := range []struct {
		name      string
		script    []int
		maxNew    int
		stopAfter int // onToken returns false at this many tokens (0: never)
		want      []int
		reason    StopReason
	}{
		{"eos", []int{4, 3, eos, 5}, 10, 0, []int{4, 3}, StopEOS},
		{"max tokens", []int{4, 3, 5, 6}, 3, 0, []int{4, 3, 5}, StopMaxTokens},
		{"callback", []int{4, 3, 5, 6}, 10, 2, []int{4, 3}, StopCallback},
		{"eos first", []int{eos}, 10, 0, nil, StopEOS},
		{"no new tokens", []int{4}, 0, 0, nil, StopMaxTokens},
	} {
		for _, logits := range []bool{false, true} {
			f := &scriptForward{script: tc.script, logits: logits, reused: 1}
			sp, err := NewSampler(Sampling{MaxNewTokens: tc.maxNew, KeepStepLogits: true}, 8)
			if err != nil {
				t.Fatal(err)
			}
			var streamed []int
			res := &Result{}
			err = RunGeneration(f, sp, in, eos, time.Now(), res, func(id int) bool {
				streamed = append(streamed, id)
				return tc.stopAfter == 0 || len(streamed) < tc.stopAfter
			})
			if err != nil {
				t.Fatal(err)
			}
			name := tc.name + map[bool]string{false: " (token)", true: " (logits)"}[logits]
			if !slices.Equal(res.GeneratedIDs, tc.want) || res.StopReason != tc.reason || !slices.Equal(streamed, tc.want) {
				t.Errorf("%s: %v (%s), streamed %v; want %v (%s)", name, res.GeneratedIDs, res.StopReason, streamed, tc.want, tc.reason)
			}
			// each step feeds the token chosen before it
			if wantFed := res.GeneratedIDs[:max(0, f.step-1)]; !slices.Equal(f.fed, wantFed) {
				t.Errorf("%s: fed %v, want %v", name, f.fed, wantFed)
			}
			st := res.Stats
			if st.PrefillTokens != 3 || st.ReusedTokens != 1 || st.DecodeTokens != f.step-1 {
				t.Errorf("%s: stats %+v, want 3 prefilled, 1 reused, %d decode steps", name, st, f.step-1)
			}
			if wantRows := len(res.GeneratedIDs); logits && (len(res.StepLogits) != 8*wantRows || len(res.PrefillLogitsLast) != 8) ||
				!logits && (res.StepLogits != nil || res.PrefillLogitsLast != nil) {
				t.Errorf("%s: %d step logits, %d prefill logits", name, len(res.StepLogits), len(res.PrefillLogitsLast))
			}
		}
	}

	// a failing step is the loop's error
	f := &scriptForward{script: []int{4, 3, 5}, failAt: 2}
	sp, _ := NewSampler(Sampling{MaxNewTokens: 5}, 8)
	if err := RunGeneration(f, sp, in, eos, time.Now(), &Result{}, nil); err == nil || err.Error() != "device lost" {
		t.Errorf("failing decode: %v", err)
	}
}
