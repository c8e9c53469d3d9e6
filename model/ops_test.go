package model

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// closeTo reports whether got is within tol of want, relative to max(1, |want|).
func closeTo(got float32, want, tol float64) bool {
	return math.Abs(float64(got)-want) <= tol*max(1, math.Abs(want))
}

func TestMatMul(t *testing.T) {
	// Sizes exercise the 4×4 tiles, the leftover rows and columns, tile-block borders
	// (64) and the parallel path (≥ matMulSerialMACs).
	for _, tc := range []struct{ m, k, n int }{
		{1, 1, 1}, {1, 7, 5}, {3, 9, 6}, {4, 16, 4}, {5, 33, 130}, {67, 40, 70}, {130, 64, 65},
	} {
		for _, withBias := range []bool{false, true} {
			r := rand.New(rand.NewPCG(uint64(tc.m), uint64(tc.n)))
			x, w := randSlice(r, tc.m*tc.k), randSlice(r, tc.n*tc.k)
			var bias []float32
			if withBias {
				bias = randSlice(r, tc.n)
			}
			out := make([]float32, tc.m*tc.n)
			MatMul(out, x, w, bias, tc.m, tc.k, tc.n)
			for i := range tc.m {
				for j := range tc.n {
					var want float64
					for t := range tc.k {
						want += float64(x[i*tc.k+t]) * float64(w[j*tc.k+t])
					}
					if withBias {
						want += float64(bias[j])
					}
					if got := out[i*tc.n+j]; !closeTo(got, want, 1e-5*float64(tc.k)) {
						t.Fatalf("m%d k%d n%d bias %v: out[%d,%d] = %v, want %v", tc.m, tc.k, tc.n, withBias, i, j, got, want)
					}
				}
			}
		}
	}
}

// TestMatMulParallelMatchesSerial: every output element is one dot product in a fixed
// order, so the number of goroutines cannot change the result.
func TestMatMulParallelMatchesSerial(t *testing.T) {
	const m, k, n = 70, 96, 200
	r := rand.New(rand.NewPCG(1, 2))
	x, w, b := randSlice(r, m*k), randSlice(r, n*k), randSlice(r, n)
	parallel := make([]float32, m*n)
	MatMul(parallel, x, w, b, m, k, n)
	serial := make([]float32, m*n)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	MatMul(serial, x, w, b, m, k, n)
	if d := maxAbsDiff(parallel, serial); d != 0 {
		t.Errorf("parallel and serial MatMul differ by %g", d)
	}
}

func TestRMSNorm(t *testing.T) {
	x := []float32{1, 2, 3, 4, -2, 0, 0, 2}
	w := []float32{1, 0.5, 2, 1}
	out := make([]float32, len(x))
	RMSNorm(out, x, w, 2, 4, 1e-5)
	// row 0: mean(x²) = 7.5; row 1: mean(x²) = 2
	r0, r1 := 1/math.Sqrt(7.5+1e-5), 1/math.Sqrt(2+1e-5)
	want := []float64{1 * r0, 2 * r0 * 0.5, 3 * r0 * 2, 4 * r0, -2 * r1, 0, 0, 2 * r1}
	for i := range want {
		if !closeTo(out[i], want[i], 1e-6) {
			t.Errorf("out[%d] = %v, want %v", i, out[i], want[i])
		}
	}
	RMSNorm(x, x, w, 2, 4, 1e-5) // in place
	if d := maxAbsDiff(x, out); d != 0 {
		t.Errorf("in-place RMSNorm differs by %g", d)
	}
}

func TestLayerNorm(t *testing.T) {
	x := []float32{1, 2, 3, 4, 10, 10, 10, 10}
	w := []float32{2, 2, 1, 1}
	b := []float32{1, 0, 0, -1}
	out := make([]float32, len(x))
	LayerNorm(out, x, w, b, 2, 4, 1e-6)
	// row 0: mean 2.5, biased variance 1.25; row 1: variance 0, so only the bias is left
	s := 1 / math.Sqrt(1.25+1e-6)
	want := []float64{-1.5*s*2 + 1, -0.5 * s * 2, 0.5 * s, 1.5*s - 1, 1, 0, 0, -1}
	for i := range want {
		if !closeTo(out[i], want[i], 1e-6) {
			t.Errorf("out[%d] = %v, want %v", i, out[i], want[i])
		}
	}
}

func TestRoPEMatchesRotateHalfFormula(t *testing.T) {
	const heads, headDim, base = 3, 8, 10000.0
	positions := []int{0, 1, 2, 2, 7, 2047}
	r := rand.New(rand.NewPCG(3, 4))
	x := randSlice(r, len(positions)*heads*headDim)
	orig := append([]float32(nil), x...)
	RoPE(x, len(positions), heads, headDim, positions, base)
	for row, p := range positions {
		for h := range heads {
			off := (row*heads + h) * headDim
			for i := range headDim / 2 {
				// value i pairs with value i + headDim/2, angle p·base^(−2i/headDim)
				theta := float64(p) * math.Pow(base, -2*float64(i)/headDim)
				a, b := float64(orig[off+i]), float64(orig[off+i+headDim/2])
				wantA := a*math.Cos(theta) - b*math.Sin(theta)
				wantB := b*math.Cos(theta) + a*math.Sin(theta)
				// float32 angles at position 2047 are off by up to ~1e-4 rad
				tol := 1e-6 + 1e-7*float64(p)
				if !closeTo(x[off+i], wantA, tol) || !closeTo(x[off+i+headDim/2], wantB, tol) {
					t.Fatalf("pos %d head %d pair %d: got (%v, %v), want (%v, %v)",
						p, h, i, x[off+i], x[off+i+headDim/2], wantA, wantB)
				}
			}
		}
	}
}

// TestRoPERelative: q·k after RoPE depends only on the distance between the positions.
func TestRoPERelative(t *testing.T) {
	const headDim = 16
	r := rand.New(rand.NewPCG(5, 6))
	q, k := randSlice(r, headDim), randSlice(r, headDim)
	dotAt := func(pq, pk int) float64 {
		qq, kk := append([]float32(nil), q...), append([]float32(nil), k...)
		RoPE(qq, 1, 1, headDim, []int{pq}, RoPEBase)
		RoPE(kk, 1, 1, headDim, []int{pk}, RoPEBase)
		var d float64
		for i := range qq {
			d += float64(qq[i]) * float64(kk[i])
		}
		return d
	}
	if a, b := dotAt(9, 4), dotAt(25, 20); math.Abs(a-b) > 1e-4 {
		t.Errorf("q·k at positions (9, 4) = %v but at (25, 20) = %v", a, b)
	}
}

// naiveAttention is the textbook formula in float64.
func naiveAttention(q, k, v []float32, qRows, kvRows, heads, headDim int, causal bool) []float64 {
	width := heads * headDim
	out := make([]float64, qRows*width)
	for i := range qRows {
		for h := range heads {
			seen := kvRows
			if causal {
				seen = kvRows - qRows + i + 1
			}
			s := make([]float64, seen)
			var maxv, sum float64 = math.Inf(-1), 0
			for j := range seen {
				for t := range headDim {
					s[j] += float64(q[i*width+h*headDim+t]) * float64(k[j*width+h*headDim+t])
				}
				s[j] /= math.Sqrt(float64(headDim))
				maxv = max(maxv, s[j])
			}
			for j := range s {
				s[j] = math.Exp(s[j] - maxv)
				sum += s[j]
			}
			for j := range s {
				for t := range headDim {
					out[i*width+h*headDim+t] += s[j] / sum * float64(v[j*width+h*headDim+t])
				}
			}
		}
	}
	return out
}

func TestAttention(t *testing.T) {
	for _, tc := range []struct {
		name           string
		qRows, kvRows  int
		heads, headDim int
		causal         bool
		workers        int // scores scratch for this many workers
	}{
		{"full", 5, 5, 2, 4, false, 1},
		{"causal prefill", 5, 5, 2, 4, true, 1},
		{"causal with cache", 3, 7, 2, 4, true, 1},
		{"decode step", 1, 6, 2, 4, true, 1},
		// large enough (≥ matMulSerialMACs) to run on several goroutines
		{"full parallel", 40, 40, 4, 32, false, 3},
		{"causal with cache parallel", 40, 50, 4, 32, true, AttentionScratchLen(50) / 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			width := tc.heads * tc.headDim
			r := rand.New(rand.NewPCG(7, uint64(tc.kvRows)))
			q := randSlice(r, tc.qRows*width)
			k, v := randSlice(r, tc.kvRows*width), randSlice(r, tc.kvRows*width)
			scores := make([]float32, tc.workers*tc.kvRows)
			out := make([]float32, tc.qRows*width)
			Attention(out, q, k, v, scores, tc.qRows, tc.kvRows, tc.heads, tc.headDim, tc.causal)
			want := naiveAttention(q, k, v, tc.qRows, tc.kvRows, tc.heads, tc.headDim, tc.causal)
			for i := range want {
				if !closeTo(out[i], want[i], 1e-5) {
					t.Fatalf("out[%d] = %v, want %v", i, out[i], want[i])
				}
			}
		})
	}
}

// TestAttentionCausalMask: under the causal mask the first query sees only the first key
// (its output is exactly v[0]), and changing later keys and values leaves earlier rows alone.
func TestAttentionCausalMask(t *testing.T) {
	const rows, heads, headDim = 4, 2, 4
	const width = heads * headDim
	r := rand.New(rand.NewPCG(8, 9))
	q, k, v := randSlice(r, rows*width), randSlice(r, rows*width), randSlice(r, rows*width)
	scores := make([]float32, rows)
	out := make([]float32, rows*width)
	Attention(out, q, k, v, scores, rows, rows, heads, headDim, true)
	if d := maxAbsDiff(out[:width], v[:width]); d > 1e-7 {
		t.Errorf("row 0 differs from v[0] by %g", d)
	}
	for i := 2 * width; i < rows*width; i++ { // disturb keys and values of rows 2, 3
		k[i], v[i] = k[i]+10, v[i]-10
	}
	out2 := make([]float32, rows*width)
	Attention(out2, q, k, v, scores, rows, rows, heads, headDim, true)
	if d := maxAbsDiff(out2[:2*width], out[:2*width]); d != 0 {
		t.Errorf("rows 0-1 changed by %g when only later keys changed", d)
	}
	if d := maxAbsDiff(out2[2*width:], out[2*width:]); d == 0 {
		t.Error("rows 2-3 did not change when their keys changed")
	}
}

func TestSoftmax(t *testing.T) {
	for _, tc := range []struct {
		in   []float32
		want []float64
	}{
		{[]float32{1, 2, 3}, []float64{0.09003057317038046, 0.24472847105479764, 0.6652409557748219}},
		{[]float32{1000, 1001}, []float64{0.2689414213699951, 0.7310585786300049}}, // exp(1000) overflows without max subtraction
		{[]float32{-5}, []float64{1}},
	} {
		x := append([]float32(nil), tc.in...)
		Softmax(x)
		for i := range x {
			if !closeTo(x[i], tc.want[i], 1e-6) {
				t.Errorf("Softmax(%v)[%d] = %v, want %v", tc.in, i, x[i], tc.want[i])
			}
		}
	}
}

func TestGELUExactErf(t *testing.T) {
	// x·Φ(x); the tanh approximation gives e.g. 0.841192 at 1 and −0.004047 at −3.
	in := []float32{0, 1, -1, 2, -3, 0.5}
	want := []float64{0, 0.8413447460685429, -0.15865525393145707, 1.9544997361036416, -0.0040496940948904, 0.34573123063700656}
	x := append([]float32(nil), in...)
	GELU(x)
	for i := range x {
		if math.Abs(float64(x[i])-want[i]) > 1e-7 {
			t.Errorf("GELU(%v) = %v, want %v", in[i], x[i], want[i])
		}
	}
}

func TestSiLUMul(t *testing.T) {
	gate := []float32{1, -2, 0}
	up := []float32{2, 1, 5}
	out := make([]float32, 3)
	SiLUMul(out, gate, up)
	want := []float64{2 * 0.7310585786300049, -2 * 0.11920292202211755, 0}
	for i := range want {
		if !closeTo(out[i], want[i], 1e-6) {
			t.Errorf("silu(%v)·%v = %v, want %v", gate[i], up[i], out[i], want[i])
		}
	}
}

func TestEmbeddingAndAdd(t *testing.T) {
	table := []float32{0, 0, 1, 1, 2, 2}
	out := make([]float32, 6)
	Embedding(out, []int{2, 0, 1}, table, 2)
	Add(out, out, []float32{1, 1, 1, 1, 1, 1})
	want := []float32{3, 3, 1, 1, 2, 2}
	if d := maxAbsDiff(out, want); d != 0 {
		t.Errorf("got %v, want %v", out, want)
	}
}

func TestArgmax(t *testing.T) {
	for _, tc := range []struct {
		logits []float32
		want   int
	}{
		{[]float32{1}, 0},
		{[]float32{-3, 2, 7, 7, -1}, 2}, // the lowest index on ties
		{[]float32{float32(math.Inf(-1)), -1e30}, 1},
	} {
		if got := Argmax(tc.logits); got != tc.want {
			t.Errorf("Argmax(%v) = %d, want %d", tc.logits, got, tc.want)
		}
	}
}

// TestQKVRoPE: the fused rows split into q, k and v, q and k rotated as RoPE rotates them.
func TestQKVRoPE(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const rows, heads, headDim = 3, 2, 6
	width := heads * headDim
	qkv := randSlice(r, rows*3*width)
	positions := []int{0, 5, 9}
	q, k, v := make([]float32, rows*width), make([]float32, rows*width), make([]float32, rows*width)
	QKVRoPE(q, k, v, qkv, positions, rows, heads, headDim, RoPEBase)
	wq, wk, wv := make([]float32, rows*width), make([]float32, rows*width), make([]float32, rows*width)
	for i := range rows {
		copy(wq[i*width:], qkv[i*3*width:][:width])
		copy(wk[i*width:], qkv[i*3*width+width:][:width])
		copy(wv[i*width:], qkv[i*3*width+2*width:][:width])
	}
	RoPE(wq, rows, heads, headDim, positions, RoPEBase)
	RoPE(wk, rows, heads, headDim, positions, RoPEBase)
	if !slices.Equal(q, wq) || !slices.Equal(k, wk) || !slices.Equal(v, wv) {
		t.Errorf("QKVRoPE differs from splitting by hand and RoPE")
	}
}

// TestVisionEmbed: cls, then the patch rows, plus positions; in place as the CPU
// reference runs it.
func TestVisionEmbed(t *testing.T) {
	const rows, dim = 3, 2
	cls := []float32{1, 2}
	patches := []float32{10, 20, 30, 40}
	pos := []float32{100, 200, 300, 400, 500, 600}
	want := []float32{101, 202, 310, 420, 530, 640}
	out := make([]float32, rows*dim)
	VisionEmbed(out, cls, patches, pos, rows, dim)
	if !slices.Equal(out, want) {
		t.Errorf("VisionEmbed = %v, want %v", out, want)
	}
	inPlace := append([]float32{0, 0}, patches...)
	VisionEmbed(inPlace, cls, inPlace[dim:], pos, rows, dim)
	if !slices.Equal(inPlace, want) {
		t.Errorf("VisionEmbed in place = %v, want %v", inPlace, want)
	}
}

func TestF16ToF32(t *testing.T) {
	src := []uint16{0x0000, 0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00}
	want := []float32{0, 1, -2, 65504, float32(math.Ldexp(1, -24)), float32(math.Inf(1))}
	got := make([]float32, len(src))
	F16ToF32(got, src)
	if !slices.Equal(got, want) {
		t.Errorf("F16ToF32(%x) = %v, want %v", src, got, want)
	}
}

// TestSample: top-k 1 is the argmax whatever the draw; a flat distribution is cut by the
// draw.
func TestSample(t *testing.T) {
	logits := []float32{0.5, 3, -1, 2}
	for _, u := range []float64{0, 0.5, 0.999} {
		if got, err := Sample(logits, Sampling{Temperature: 0.7, TopK: 1}, u); err != nil || got != 1 {
			t.Errorf("top-k 1, u=%v: %d, %v; want 1", u, got, err)
		}
	}
	flat := []float32{0, 0, 0, 0}
	for u, want := range []int{0, 1, 2, 3} {
		if got, err := Sample(flat, Sampling{Temperature: 1, TopK: 4, TopP: 1}, float64(u)/4+0.1); err != nil || got != want {
			t.Errorf("flat, u=%v: %d, %v; want %d", float64(u)/4+0.1, got, err, want)
		}
	}
	if _, err := Sample(logits, Sampling{Temperature: -1}, 0); err == nil {
		t.Error("a negative temperature is accepted")
	}
}
