//go:build js && wasm

package kernels

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// TimingMethod says what a Timer's durations measure.
type TimingMethod string

const (
	// PassTimestamps is the GPU's own clock, written at the beginning and the end of the
	// compute pass (the timestamp-query feature): kernel time without submit latency.
	PassTimestamps TimingMethod = "pass timestamps"
	// WallClock is the time from submit to onSubmittedWorkDone, as the page sees it; the
	// fallback where the device has no timestamp-query.
	WallClock TimingMethod = "wall clock"
)

// Timing limits for TimeStep. Browsers quantize timestamps (Chromium to 100 µs) and wall
// time has a submit latency of its own, so a single short dispatch cannot be timed alone:
// TimeStep repeats it inside one pass until the pass lasts minTimedPass, which keeps the
// clock's resolution near 1% of what is measured.
const (
	minTimedPass = 10 * time.Millisecond
	maxStepReps  = 512
)

// Timer times plans on the GPU, one compute pass per run.
type Timer struct {
	k      *Kernels
	Method TimingMethod
	// With PassTimestamps: query 0 is the beginning of the pass, query 1 its end, resolved
	// as two u64 nanosecond counts into stamps.
	queries *gpu.QuerySet
	stamps  *gpu.Buffer
}

// NewTimer uses pass timestamps where the device has timestamp-query, else wall time.
func NewTimer(k *Kernels) (*Timer, error) {
	t := &Timer{k: k, Method: WallClock}
	if !k.Dev.Has(gpu.FeatureTimestampQuery) {
		return t, nil
	}
	q, err := k.Dev.CreateTimestampQuerySet("timer", 2)
	if err != nil {
		return nil, err
	}
	b, err := k.Dev.CreateBuffer("timer stamps", 16, gpu.UsageQueryResolve|gpu.UsageCopySrc)
	if err != nil {
		q.Destroy()
		return nil, err
	}
	t.queries, t.stamps, t.Method = q, b, PassTimestamps
	return t, nil
}

// Destroy frees the query set and its buffer.
func (t *Timer) Destroy() {
	if t.queries != nil {
		t.queries.Destroy()
		t.stamps.Destroy()
		t.queries, t.stamps = nil, nil
	}
}

// Time runs p once, as one compute pass in one submit, waits for it, and returns how long
// the pass took by t.Method.
func (t *Timer) Time(p *Plan) (time.Duration, error) {
	d := t.k.Dev
	enc, err := d.CreateCommandEncoder("timed plan")
	if err != nil {
		return 0, err
	}
	var writes *gpu.TimestampWrites
	if t.queries != nil {
		writes = &gpu.TimestampWrites{QuerySet: t.queries, Begin: 0, End: 1}
	}
	pass, err := enc.BeginComputePass("timed plan", writes)
	if err != nil {
		return 0, err
	}
	if err := p.Encode(pass); err != nil {
		return 0, err
	}
	if err := pass.End(); err != nil {
		return 0, err
	}
	if t.queries != nil {
		if err := enc.ResolveQuerySet(t.queries, 0, 2, t.stamps, 0); err != nil {
			return 0, err
		}
	}
	cb, err := enc.Finish()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := d.Submit(cb); err != nil {
		return 0, err
	}
	if t.queries == nil {
		if err := d.Sync(); err != nil {
			return 0, fmt.Errorf("timed plan: %w", err)
		}
		return time.Since(start), nil
	}
	raw, err := d.ReadBuffer(t.stamps, 0, 16)
	if err != nil {
		return 0, err
	}
	// A failed dispatch leaves meaningless timestamps: surface its error instead.
	if err := d.Sync(); err != nil {
		return 0, fmt.Errorf("timed plan: %w", err)
	}
	begin, end := binary.LittleEndian.Uint64(raw), binary.LittleEndian.Uint64(raw[8:])
	if end < begin {
		return 0, fmt.Errorf("timed plan: end-of-pass timestamp %d ns is before the beginning %d ns", end, begin)
	}
	return time.Duration(end - begin), nil
}

// StepTiming is how long one dispatch of a step takes.
type StepTiming struct {
	Median  time.Duration   // of Samples
	Samples []time.Duration // per dispatch: each timed pass divided by Reps
	Reps    int             // dispatches per timed pass
}

// TimeStep times one dispatch of s: it finds how many back-to-back dispatches make a pass
// of at least minTimedPass (at most maxStepReps; the last calibration pass doubles as the
// warm-up), then times up to runs such passes: fewer, but at least one, where runs passes
// would take longer than budget (0: no budget). A single dispatch longer than the whole
// budget is its own one sample: slow kernels on a CPU adapter take seconds to a minute a
// dispatch, where a warm-up changes nothing measurable and would double the wait.
func (t *Timer) TimeStep(s Step, runs int, budget time.Duration) (StepTiming, error) {
	if runs < 1 {
		return StepTiming{}, fmt.Errorf("time %s: runs=%d, want at least 1", s.Label, runs)
	}
	reps := 1
	for {
		d, err := t.Time(repeat(s, reps))
		if err != nil {
			return StepTiming{}, fmt.Errorf("time %s: %w", s.Label, err)
		}
		if budget > 0 && reps == 1 && d > budget {
			return StepTiming{Median: d, Samples: []time.Duration{d}, Reps: 1}, nil
		}
		if d >= minTimedPass || reps >= maxStepReps {
			if budget > 0 && time.Duration(runs)*d > budget {
				runs = max(1, int(budget/d))
			}
			break
		}
		next := maxStepReps // a pass below the clock's resolution reads as 0
		if d > 0 {
			// Aim 20% past the target, so noise does not leave the next pass just short.
			next = int(float64(reps) * 1.2 * float64(minTimedPass) / float64(d))
		}
		reps = min(maxStepReps, max(2*reps, next))
	}
	st := StepTiming{Reps: reps, Samples: make([]time.Duration, runs)}
	p := repeat(s, reps)
	for i := range st.Samples {
		d, err := t.Time(p)
		if err != nil {
			return StepTiming{}, fmt.Errorf("time %s: %w", s.Label, err)
		}
		st.Samples[i] = d / time.Duration(reps)
	}
	st.Median = Median(st.Samples)
	return st, nil
}

func repeat(s Step, n int) *Plan {
	p := &Plan{}
	for range n {
		p.Add(s)
	}
	return p
}

// Median of d (the mean of the middle two for an even count; 0 for none).
func Median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}
