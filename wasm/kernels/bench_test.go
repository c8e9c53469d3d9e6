//go:build js && wasm

package kernels

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// The kernel benchmark is a test behind a flag rather than Go benchmarks: it prints one
// table (median of a few passes, GB/s, GFLOP/s, ratio to the copy roofline measured in
// the same run), where testing.B would rerun each kernel b.N times for a mean. The
// command is in bench/README.md.
var kernelBench = flag.Bool("kernelbench", false,
	"TestKernelBench: time every kernel at CogVLM's sizes and print a table (about 3 minutes on SwiftShader)")

// TestTimeStep is the timing helper's smoke test in the normal run, so that the benchmark
// code cannot rot unnoticed: one copy dispatch must take a positive time.
func TestTimeStep(t *testing.T) {
	k := kernels(t)
	timer, err := NewTimer(k)
	if err != nil {
		t.Fatal(err)
	}
	defer timer.Destroy()
	want := WallClock
	if k.Dev.Has(gpu.FeatureTimestampQuery) {
		want = PassTimestamps
	}
	if timer.Method != want {
		t.Errorf("timer method %q, want %q", timer.Method, want)
	}
	const n = 1 << 20 // 4 MiB
	src, dst := output(t, k, "src", n), output(t, k, "dst", n)
	defer src.Buf.Destroy()
	defer dst.Buf.Destroy()
	step := must(t)(k.Copy(dst, src, n))
	st, err := timer.TimeStep(step, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Median <= 0 || len(st.Samples) != 1 || st.Reps < 1 || st.Reps > maxStepReps {
		t.Fatalf("TimeStep = %+v, want one positive sample and 1…%d repetitions", st, maxStepReps)
	}
	t.Logf("copy of 4 MiB: %v per dispatch (%d per pass, %s)", st.Median, st.Reps, timer.Method)
	// A dispatch longer than the whole budget is timed once, alone, without a warm-up.
	if st, err := timer.TimeStep(step, 5, time.Nanosecond); err != nil || len(st.Samples) != 1 || st.Reps != 1 || st.Median <= 0 {
		t.Errorf("TimeStep(runs=5, budget=1ns) = %+v, %v; want one positive sample of one dispatch", st, err)
	}
	if _, err := timer.TimeStep(step, 0, 0); err == nil || !strings.Contains(err.Error(), "runs=0") {
		t.Errorf("TimeStep(runs=0) error = %v, want one naming runs=0", err)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{5}, 5},
		{[]time.Duration{9, 1, 5}, 5},
		{[]time.Duration{4, 1, 3, 2}, 2}, // (2+3)/2 in integer nanoseconds
		{[]time.Duration{7, 7, 1, 100, 7}, 7},
	} {
		in := append([]time.Duration(nil), tc.in...)
		if got := Median(in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Fatalf("Median reordered its argument: %v", in)
			}
		}
	}
}

// benchBuffers allocates a case's buffers and frees them all when the case is done, so
// the benchmark's memory stays at one case's worth (the lm head alone is 74 MB).
type benchBuffers struct {
	t    *testing.T
	k    *Kernels
	r    *rand.Rand
	bufs []*gpu.Buffer
}

func (b *benchBuffers) keep(t Tensor) Tensor { b.bufs = append(b.bufs, t.Buf); return t }

func (b *benchBuffers) release() {
	for _, buf := range b.bufs {
		buf.Destroy()
	}
	b.bufs = nil
}

// f32 uploads n uniform values in [-scale, scale): the timing does not depend on them,
// and uniform draws are far cheaper than Gaussian ones in WASM for 16M weights.
func (b *benchBuffers) f32(label string, n int, scale float32) Tensor {
	v := make([]float32, n)
	for i := range v {
		v[i] = (2*b.r.Float32() - 1) * scale
	}
	return b.keep(upload(b.t, b.k, label, v))
}

// kv uploads n uniform values in [-scale, scale) in a KV cache's precision.
func (b *benchBuffers) kv(label string, n int, scale float32, p KVPrecision) Tensor {
	if p == KVF32 {
		return b.f32(label, n, scale)
	}
	h := make([]uint16, n)
	for i := range h {
		h[i] = quant.F16FromFloat32((2*b.r.Float32() - 1) * scale)
	}
	return b.keep(uploadBytes(b.t, b.k, label, u16Bytes(h)))
}

func (b *benchBuffers) out(label string, n int) Tensor { return b.keep(output(b.t, b.k, label, n)) }

// q4 uploads random q4 weights [n][k] with group 32: qweight and f16 scales.
func (b *benchBuffers) q4(n, k int) (qweight, scales Tensor) {
	q, s := randomQ4(b.r, n, k, 32)
	return b.keep(uploadU32(b.t, b.k, "qweight", q)), b.keep(uploadBytes(b.t, b.k, "scales", u16Bytes(s)))
}

// benchCase is one kernel at one size.
type benchCase struct {
	kernel, size string
	// bytes is the least a dispatch must move: weights, activations read and written.
	bytes float64
	// flops counts 2 per multiply-add, for the compute-bound kernels; 0 for the others.
	flops float64
	setup func(b *benchBuffers) (Step, error)
	// q4 is the M and K of a q4 product (which has an f16 kernel), nil for the others
	q4 []int
}

// Each case times up to benchRuns passes, fewer where they would take longer than
// benchBudget: the q4 tiled matmul takes seconds a pass on SwiftShader.
const (
	benchRuns   = 7
	benchBudget = 15 * time.Second
)

// Vicuna-7B's sizes, and the copy roofline's buffer size (as in the peer harness).
const (
	benchHidden    = 4096 // hidden size = heads × head_dim
	benchHeads     = 32
	benchHeadDim   = 128
	benchCopyBytes = 256 << 20 // per buffer
)

func q4Bytes(k, n int) float64 { return float64(k*n/2 + 2*n*k/32) } // nibbles and f16 scales

func matVecQ4Case(k, n int) benchCase {
	return benchCase{
		kernel: "q4 matvec", size: fmt.Sprintf("K×N %d×%d, M=1", k, n),
		bytes: q4Bytes(k, n) + 4*float64(k+n), q4: []int{1, k},
		setup: func(b *benchBuffers) (Step, error) {
			q, s := b.q4(n, k)
			return b.k.MatMulQ4(b.out("out", n), b.f32("x", k, 1), q, s, Tensor{}, 1, k, n, 32)
		},
	}
}

// matMulQ4Case times one of MatMulQ4's two prefill kernels, whichever its rule would pick.
func matMulQ4Case(kind PrefillQ4, m, k, n int) benchCase {
	name := map[PrefillQ4]string{PrefillTiled: "q4 tiled matmul", PrefillRows: "q4 rows matmul"}[kind]
	return benchCase{
		kernel: name, size: fmt.Sprintf("K×N %d×%d, M=%d", k, n, m),
		bytes: q4Bytes(k, n) + 4*float64(m*k+m*n), flops: 2 * float64(m) * float64(k) * float64(n), q4: []int{m, k},
		setup: func(b *benchBuffers) (Step, error) {
			defer func(old PrefillQ4) { b.k.PrefillQ4 = old }(b.k.PrefillQ4)
			b.k.PrefillQ4 = kind
			q, s := b.q4(n, k)
			return b.k.MatMulQ4(b.out("out", m*n), b.f32("x", m*k, 1), q, s, Tensor{}, m, k, n, 32)
		},
	}
}

// attentionCase: qRows queries (the last of kvRows positions) against kvRows keys in a
// cache of precision kv, causal as in the language model; each query sees
// Σ (kvRows − qRows + i + 1) keys; on the one-row kernel if oneRow (Kernels.NoAttentionTiles).
func attentionCase(kernel string, qRows, kvRows int, kv KVPrecision, oneRow bool) benchCase {
	pairs := 0.0
	for i := range qRows {
		pairs += float64(kvRows - qRows + i + 1)
	}
	width := benchHeads * benchHeadDim
	return benchCase{
		kernel: kernel, size: fmt.Sprintf("q %d, kv %d (%s), %d heads × %d", qRows, kvRows, kv, benchHeads, benchHeadDim),
		bytes: float64(width) * float64(4*2*qRows+kv.BytesPerValue()*2*kvRows), flops: 4 * benchHeadDim * benchHeads * pairs,
		setup: func(b *benchBuffers) (Step, error) {
			state, err := b.k.NewStepState("step")
			if err != nil {
				return Step{}, err
			}
			b.bufs = append(b.bufs, state.Buf)
			if err := state.Set(b.k.Dev, kvRows, kvRows-qRows); err != nil {
				return Step{}, err
			}
			defer func(old bool) { b.k.NoAttentionTiles = old }(b.k.NoAttentionTiles)
			b.k.NoAttentionTiles = oneRow
			cache := KVCache{K: b.kv("k", kvRows*width, 1, kv), V: b.kv("v", kvRows*width, 1, kv), Precision: kv}
			return b.k.Attention(b.out("out", qRows*width), b.f32("q", qRows*width, 1), cache, state, qRows, benchHeads, benchHeadDim, true)
		},
	}
}

func rmsNormCase(rows int) benchCase {
	return benchCase{
		kernel: "rmsnorm", size: fmt.Sprintf("%d×%d", rows, benchHidden),
		bytes: 4 * float64(2*rows*benchHidden+benchHidden),
		setup: func(b *benchBuffers) (Step, error) {
			return b.k.RMSNorm(b.out("out", rows*benchHidden), b.f32("x", rows*benchHidden, 2), b.f32("w", benchHidden, 1), rows, benchHidden, 1e-5)
		},
	}
}

// copyCase copies benchCopyBytes, or the largest binding the device allows where that is
// less (lavapipe: 128 MiB).
func copyCase(limits gpu.Limits) benchCase {
	size := uint64(benchCopyBytes)
	if l := limits.MaxStorageBufferBindingSize; l > 0 && l < size {
		size = l &^ (4<<20 - 1) // whole 4 MiB chunks
	}
	n := int(size / 4)
	return benchCase{
		kernel: "copy (roofline)", size: fmt.Sprintf("%d MiB → %d MiB", size>>20, size>>20), bytes: 2 * float64(size),
		setup: func(b *benchBuffers) (Step, error) {
			buf, err := b.k.Dev.CreateBuffer("src", size, gpu.UsageStorage|gpu.UsageCopyDst)
			if err != nil {
				return Step{}, err
			}
			src := b.keep(Whole(buf))
			// Real data rather than lazily cleared pages: fill src in 4 MiB chunks.
			chunk := make([]float32, 1<<20)
			for i := range chunk {
				chunk[i] = float32(i) * 0.5
			}
			raw := gpu.Float32Bytes(chunk)
			for off := 0; off < int(size); off += len(raw) {
				if err := b.k.Dev.WriteBuffer(src.Buf, uint64(off), raw); err != nil {
					return Step{}, err
				}
			}
			return b.k.Copy(b.out("dst", n), src, n)
		},
	}
}

// benchCases are the kernels of a CogVLM decode step and prefill, at Vicuna-7B's sizes
// (K×N as in the peer harness). Prefill attention covers the image and a short prompt,
// 1227 image tokens + 16 text tokens, except on a CPU adapter (SwiftShader), where it
// takes about a minute a dispatch: there it covers 256 + 16 tokens (the cost grows with
// the square of the count), which the table's size column says.
//
// The q4 products run on the f32 path (named as before) and, where the adapter has an f16
// kernel for them (Kernels.q4F16), on the f16 path too ("… f16"), side by side.
func benchCases(k *Kernels) []benchCase {
	prefill := 1227 + 16
	if k.Dev.Info.CPU() {
		prefill = 256 + 16
	}
	var cases []benchCase
	for _, c := range benchCasesF32(prefill) {
		if c.q4 == nil {
			cases = append(cases, c)
			continue
		}
		cases = append(cases, precision(c, false))
		if k.q4F16(c.q4[0], c.q4[1], 32) {
			cases = append(cases, precision(c, true))
		}
	}
	return cases
}

// precision runs c's setup with the f16 path on or off (Kernels.NoF16); an f16 case's
// kernel is named "… f16".
func precision(c benchCase, f16 bool) benchCase {
	setup := c.setup
	if f16 {
		c.kernel += " f16"
	}
	c.setup = func(b *benchBuffers) (Step, error) {
		defer func(old bool) { b.k.NoF16 = old }(b.k.NoF16)
		b.k.NoF16 = !f16
		return setup(b)
	}
	return c
}

func benchCasesF32(prefill int) []benchCase {
	return []benchCase{
		matVecQ4Case(4096, 4096),  // q/k/v/o projections
		matVecQ4Case(4096, 12288), // fused QKV
		matVecQ4Case(11008, 4096), // MLP down
		matVecQ4Case(4096, 11008), // MLP gate/up
		matVecQ4Case(4096, 32000), // lm head
		{
			kernel: "f32 matvec", size: "K×N 4096×4096, M=1",
			bytes: 4 * float64(4096*4096+4096+4096),
			setup: func(b *benchBuffers) (Step, error) {
				return b.k.MatMul(b.out("out", 4096), b.f32("x", 4096, 1), b.f32("w", 4096*4096, 0.05), Tensor{}, 1, 4096, 4096)
			},
		},
		matMulQ4Case(PrefillTiled, 32, 4096, 4096),
		matMulQ4Case(PrefillRows, 32, 4096, 4096),
		matMulQ4Case(PrefillTiled, 32, 4096, 11008),
		matMulQ4Case(PrefillRows, 32, 4096, 11008),
		matMulQ4Case(PrefillTiled, 128, 4096, 4096),
		matMulQ4Case(PrefillRows, 128, 4096, 4096),
		matMulQ4Case(PrefillTiled, 128, 4096, 11008),
		matMulQ4Case(PrefillRows, 128, 4096, 11008),
		attentionCase("attention prefill", prefill, prefill, KVF16, false),
		attentionCase("attention 1 row", prefill, prefill, KVF16, true), // the one-row kernel on a prefill
		attentionCase("attention decode", 1, 2048, KVF32, false),
		attentionCase("attention decode", 1, 2048, KVF16, false),
		rmsNormCase(1),
		rmsNormCase(1227 + 16),
	}
}

type benchRow struct {
	benchCase
	st StepTiming
}

func (r benchRow) gbps() float64 { return r.bytes / r.st.Median.Seconds() / 1e9 }

// TestKernelBench times every kernel with TimeStep and prints the table. Each case is a
// subtest, so -run 'TestKernelBench/q4_matvec' times a subset; the copy roofline always
// runs, first and again last (SwiftShader's bandwidth drifts with the machine's load), and
// the ratios use the mean of the two.
func TestKernelBench(t *testing.T) {
	if !*kernelBench {
		t.Skip("the kernel benchmark runs with -kernelbench (see bench/README.md)")
	}
	k := kernels(t)
	timer, err := NewTimer(k)
	if err != nil {
		t.Fatal(err)
	}
	defer timer.Destroy()
	r := rand.New(rand.NewPCG(5, 4))
	measure := func(t *testing.T, c benchCase) benchRow {
		start := time.Now()
		b := &benchBuffers{t: t, k: k, r: r}
		defer b.release()
		step, err := c.setup(b)
		if err != nil {
			t.Fatalf("%s %s: %v", c.kernel, c.size, err)
		}
		st, err := timer.TimeStep(step, benchRuns, benchBudget)
		if err != nil {
			t.Fatalf("%s %s: %v", c.kernel, c.size, err)
		}
		// Progress on stderr: the table comes at the end, minutes later.
		fmt.Fprintf(os.Stderr, "bench: %s %s: %.3f ms (%d×%d dispatches, %.1f s with setup)\n",
			c.kernel, c.size, ms(st.Median), st.Reps, len(st.Samples), time.Since(start).Seconds())
		return benchRow{c, st}
	}
	copyStart := measure(t, copyCase(k.Dev.Limits))
	var rows []benchRow
	for _, c := range benchCases(k) {
		t.Run(c.kernel+" "+c.size, func(t *testing.T) { rows = append(rows, measure(t, c)) })
	}
	copyEnd := measure(t, copyCase(k.Dev.Limits))
	copyGBps := (copyStart.gbps() + copyEnd.gbps()) / 2

	info := k.Dev.Info
	fmt.Printf("\nkernel benchmark, %s; adapter %q %q %q; timing: %s, median per dispatch\n",
		time.Now().UTC().Format("2006-01-02"), info.Vendor, info.Architecture, info.Description, timer.Method)
	fmt.Printf("copy roofline: %.3f GB/s (read + write; start %.3f, end %.3f)\n", copyGBps, copyStart.gbps(), copyEnd.gbps())
	fmt.Printf("%-18s %-34s %9s %10s %7s %6s %7s\n", "kernel", "size", "reps×runs", "median ms", "GB/s", "×copy", "GFLOP/s")
	for _, row := range append(append([]benchRow{copyStart}, rows...), copyEnd) {
		flops := "-"
		if row.flops > 0 {
			flops = fmt.Sprintf("%.2f", row.flops/row.st.Median.Seconds()/1e9)
		}
		fmt.Printf("%-18s %-34s %9s %10.3f %7.3f %6.3f %7s\n", row.kernel, row.size,
			fmt.Sprintf("%d×%d", row.st.Reps, len(row.st.Samples)), ms(row.st.Median), row.gbps(), row.gbps()/copyGBps, flops)
	}
	fmt.Println("GB/s: the least bytes a dispatch moves (weights incl. f16 scales, activations in and out) / median time;")
	fmt.Println("×copy: that GB/s over the copy roofline's; GFLOP/s: 2 per multiply-add (causal attention: unmasked pairs only).")
	// f16 against f32, case by case (both also as ×copy above).
	for i, row := range rows {
		if f32, ok := strings.CutSuffix(row.kernel, " f16"); ok && i > 0 && rows[i-1].kernel == f32 && rows[i-1].size == row.size {
			fmt.Printf("%s %s: f32 %.3f ×copy, f16 %.3f ×copy: f16 takes %.2f× f32's time\n", f32, row.size,
				rows[i-1].gbps()/copyGBps, row.gbps()/copyGBps, row.st.Median.Seconds()/rows[i-1].st.Median.Seconds())
		}
	}
	// The decode target of the GPU engine: the q4 matvec of the MLP's gate/up projection
	// moves its weights at ≥ 70% of the copy bandwidth on a GPU (on a CPU adapter kernels
	// are compute-bound and the figure says little).
	for _, row := range rows {
		if strings.HasPrefix(row.kernel, "q4 matvec") && row.size == matVecQ4Case(4096, 11008).size {
			fmt.Printf("%s %s: %.3f share of the copy bandwidth (target ≥ 0.70 on a GPU; this adapter is a %s)\n",
				row.kernel, row.size, row.gbps()/copyGBps, map[bool]string{true: "CPU", false: "GPU"}[info.CPU()])
		}
	}
}

func ms(d time.Duration) float64 { return d.Seconds() * 1e3 }
