package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// packedMatrix encodes w [n, k] as enc the way a package stores it.
func packedMatrix(t testing.TB, enc quant.Encoding, w []float32, n, k, g int) Matrix {
	t.Helper()
	m := Matrix{N: n, K: k, Encoding: enc}
	var err error
	switch enc {
	case quant.F32:
		m.F32 = w
	case quant.F16:
		m.F16 = make([]uint16, n*k)
		err = quant.EncodeF16(m.F16, w)
	case quant.Q4:
		m.Words, m.Scales, err = quant.QuantizeQ4(w, n, k, g)
		m.GroupSize = g
	case quant.Q8:
		m.Words, m.Scales, err = quant.QuantizeQ8(w, n, k, g)
		m.GroupSize = g
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(n, k); err != nil {
		t.Fatal(err)
	}
	return m
}

// expand is the float32 matrix a packed one stands for (what ReadFloat32 gives).
func expand(m Matrix) []float32 {
	out := make([]float32, m.N*m.K)
	m.dequantize(out, 0, m.N)
	return out
}

// TestMatrixMatMulIsExact: on every encoding, the packed MatMul gives bit for bit what
// MatMul gives on the dequantized matrix, so a package's tokens do not change with the
// form its weights are held in. The shapes cover one row (decode), several row blocks,
// tiles cut short at the end, the serial and the parallel path, and row views (Rows).
func TestMatrixMatMulIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.NormFloat64())
		}
		return s
	}
	for _, sh := range []struct{ m, k, n, g int }{
		{1, 64, 8, 32}, {5, 96, 37, 32}, {70, 128, 67, 32}, {1, 4096, 130, 32}, {3, 16384, 9, 32}, {130, 176, 20, 16},
	} {
		w, x, bias := fill(sh.n*sh.k), fill(sh.m*sh.k), fill(sh.n)
		for _, enc := range quant.Encodings {
			pm := packedMatrix(t, enc, w, sh.n, sh.k, sh.g)
			full := expand(pm)
			for _, b := range [][]float32{nil, bias} {
				want, got := make([]float32, sh.m*sh.n), make([]float32, sh.m*sh.n)
				MatMul(want, x, full, b, sh.m, sh.k, sh.n)
				pm.MatMul(got, x, b, sh.m)
				if !slices.Equal(got, want) {
					t.Errorf("%s m=%d k=%d n=%d bias=%v: packed MatMul differs from MatMul on the expansion", enc, sh.m, sh.k, sh.n, b != nil)
				}
			}
			// a view of the middle rows, as query_key_value is split
			r0, r1 := sh.n/3, sh.n-sh.n/3
			want, got := make([]float32, sh.m*(r1-r0)), make([]float32, sh.m*(r1-r0))
			MatMul(want, x, full[r0*sh.k:r1*sh.k], nil, sh.m, sh.k, r1-r0)
			pm.Rows(r0, r1).MatMul(got, x, nil, sh.m)
			if !slices.Equal(got, want) {
				t.Errorf("%s m=%d k=%d n=%d: rows [%d, %d) differ", enc, sh.m, sh.k, sh.n, r0, r1)
			}
			// the embedding lookup
			ids := []int{sh.n - 1, 0, sh.n / 2}
			wantE, gotE := make([]float32, len(ids)*sh.k), make([]float32, len(ids)*sh.k)
			Embedding(wantE, ids, full, sh.k)
			pm.Embed(gotE, ids)
			if !slices.Equal(gotE, wantE) {
				t.Errorf("%s k=%d n=%d: Embed differs from Embedding on the expansion", enc, sh.k, sh.n)
			}
		}
	}
}

func TestMatrixCheck(t *testing.T) {
	w := make([]float32, 4*64)
	q4 := packedMatrix(t, quant.Q4, w, 4, 64, 32)
	for _, tc := range []struct {
		name   string
		m      Matrix
		errHas string
	}{
		{"shape", q4, "matrix is [4, 64], want [4, 32]"},
		{"words", func() Matrix { m := q4; m.Words = m.Words[1:]; return m }(), "qweight has 31 elements, want 32"},
		{"scales", func() Matrix { m := q4; m.Scales = nil; return m }(), "scales has 0 elements, want 8"},
		{"group", func() Matrix { m := q4; m.GroupSize = 12; return m }(), "group size 12"},
		{"f16", Matrix{N: 4, K: 64, Encoding: quant.F16, F16: make([]uint16, 3)}, "data has 3 elements, want 256"},
		{"encoding", Matrix{N: 4, K: 64, Encoding: "q3"}, `unknown matrix encoding "q3"`},
	} {
		k := 64
		if tc.name == "shape" {
			k = 32
		}
		if err := tc.m.Check(4, k); err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.errHas)
		}
	}
	if err := q4.Check(4, 64); err != nil {
		t.Errorf("a well-formed q4 matrix: %v", err)
	}
}

// TestMatrixCheckFinite: a NaN or infinite weight is found in every encoding (for q4/q8
// in the scales) and named by its position.
func TestMatrixCheckFinite(t *testing.T) {
	w := make([]float32, 4*64)
	for i := range w {
		w[i] = float32(i%7) - 3
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	for _, enc := range quant.Encodings {
		m := packedMatrix(t, enc, w, 4, 64, 32)
		if err := m.CheckFinite(); err != nil {
			t.Errorf("%s: finite weights refused: %v", enc, err)
		}
		var want string
		switch enc {
		case quant.F32:
			m.F32 = slices.Clone(m.F32)
			m.F32[70] = nan
			want = "element 70 is NaN"
		case quant.F16:
			m.F16[70] = quant.F16FromFloat32(inf)
			want = "element 70 is -Inf"
		default:
			m.Scales[5] = quant.F16FromFloat32(nan)
			want = "the scale of row 2, inputs 32…63 is NaN"
		}
		if err := m.CheckFinite(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", enc, err, want)
		}
	}
}

// BenchmarkMatrixMatMul times MatMul on each stored form of a 4096×4096 projection, at
// decode shape (one row) and prefill shape (64 rows).
func BenchmarkMatrixMatMul(b *testing.B) {
	const n, k = 4096, 4096
	r := rand.New(rand.NewPCG(1, 2))
	w := make([]float32, n*k)
	for i := range w {
		w[i] = float32(r.NormFloat64()) * 0.02
	}
	for _, enc := range quant.Encodings {
		pm := packedMatrix(b, enc, w, n, k, quant.DefaultGroupSize)
		for _, m := range []int{1, 64} {
			x := make([]float32, m*k)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			out := make([]float32, m*n)
			b.Run(fmt.Sprintf("%s/m=%d", enc, m), func(b *testing.B) {
				for b.Loop() {
					pm.MatMul(out, x, nil, m)
				}
				b.ReportMetric(float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
			})
		}
	}
}
