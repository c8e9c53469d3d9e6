package model

import (
	"slices"
	"time"
)

// Forward is a model's forward pass as the generation loop (RunGeneration) drives it: the
// CPU reference's (Model.Generate) and the GPU engine's (wasm/engine's Session) each
// supply one. Each keeps its own KV cache and the record of what it holds (KVTokens), so
// that a prompt reuses the longest prefix the cache already holds.
type Forward interface {
	// Prefill runs the prompt, after the prefix its KV cache holds already (reused tokens,
	// at most all but the last), and returns the choice of the first new token.
	Prefill(in Inputs) (next Next, reused int, err error)
	// Decode feeds id, the token the loop chose last, at the position after the last and
	// returns the choice of the token after it.
	Decode(id int) (Next, error)
}

// Next is what a forward step hands the loop: the last row's logits [V], which the loop
// samples from, or, from a forward that chose the token on its own device (the GPU's
// argmax or sampler), that token and nil Logits. Logits may be the forward's buffer,
// valid until its next step.
type Next struct {
	Logits []float32
	Token  int
}

// RunGeneration is the generation loop: the prompt in through f's Prefill, then one token
// at a time (chosen by f or sampled by sp from its logits, the sequence so far counting
// for the repetition penalty), fed back through f's Decode, until eos (not included),
// sp's MaxNewTokens, or onToken (may be nil) returns false. begin is when the request
// came (Stats.FirstToken counts from it, image included). It fills res's GeneratedIDs,
// StopReason, Stats (all but Vision) and, from the logits f returned, PrefillLogitsLast
// and (with KeepStepLogits) StepLogits.
func RunGeneration(f Forward, sp *Sampler, in Inputs, eos int, begin time.Time, res *Result, onToken func(id int) bool) error {
	maxNew := sp.s.MaxNewTokens
	start := time.Now()
	next, reused, err := f.Prefill(in)
	if err != nil {
		return err
	}
	res.Stats.Prefill, res.Stats.PrefillTokens, res.Stats.ReusedTokens = time.Since(start), len(in.InputIDs)-reused, reused
	if next.Logits != nil {
		res.PrefillLogitsLast = slices.Clone(next.Logits)
	}

	seq := slices.Grow(slices.Clone(in.InputIDs), maxNew)
	start = time.Now()
	res.StopReason = StopMaxTokens
	for len(res.GeneratedIDs) < maxNew {
		if n := len(res.GeneratedIDs); n > 0 {
			if next, err = f.Decode(res.GeneratedIDs[n-1]); err != nil {
				return err
			}
			res.Stats.DecodeTokens++
		}
		id := next.Token
		if next.Logits != nil {
			id = sp.Sample(next.Logits, seq)
		}
		if len(res.GeneratedIDs) == 0 {
			res.Stats.FirstToken = time.Since(begin)
		}
		if id == eos {
			res.StopReason = StopEOS
			break
		}
		seq = append(seq, id)
		res.GeneratedIDs = append(res.GeneratedIDs, id)
		if sp.s.KeepStepLogits && next.Logits != nil {
			res.StepLogits = append(res.StepLogits, next.Logits...)
		}
		if onToken != nil && !onToken(id) {
			res.StopReason = StopCallback
			break
		}
	}
	res.Stats.Decode = time.Since(start)
	return nil
}
