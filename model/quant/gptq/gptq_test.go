package gptq

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model/internal/testmat"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// correlatedInputs returns rows×k inputs with the structure of real activations: a
// common offset (every row shares a mean) and a few strong directions over weak noise.
func correlatedInputs(r *rand.Rand, rows, k int) []float32 {
	const dirs = 6
	basis := testmat.Gaussian(r, dirs*k, 1)
	mean := testmat.Gaussian(r, k, 0.7)
	x := make([]float32, rows*k)
	for i := range rows {
		coef := testmat.Gaussian(r, dirs, 1)
		for c := range k {
			v := mean[c] + 0.1*float32(r.NormFloat64())
			for d := range dirs {
				v += coef[d] * basis[d*k+c] / float32(d+1)
			}
			x[i*k+c] = v
		}
	}
	return x
}

func hessianOf(x []float32, rows, k int) *Hessian {
	h := NewHessian(k)
	h.Add(x, rows)
	return h
}

// outputError is ‖X·Wᵀ − X·Ŵᵀ‖ / ‖X·Wᵀ‖.
func outputError(x, w, wq []float32, rows, n, k int) float64 {
	var num, den float64
	for i := range rows {
		for j := range n {
			var y, yq float64
			for c := range k {
				y += float64(x[i*k+c]) * float64(w[j*k+c])
				yq += float64(x[i*k+c]) * float64(wq[j*k+c])
			}
			num += (y - yq) * (y - yq)
			den += y * y
		}
	}
	return math.Sqrt(num / den)
}

func TestHessianAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const rows, k = 37, 24
	x := testmat.Gaussian(r, rows*k, 1)
	h := NewHessian(k)
	h.Add(x[:10*k], 10) // in two parts, as calibration adds them
	h.Add(x[10*k:], rows-10)
	if h.Rows != rows {
		t.Errorf("Rows = %d, want %d", h.Rows, rows)
	}
	for i := range k {
		for j := range k {
			var want float64
			for n := range rows {
				want += float64(x[n*k+i]) * float64(x[n*k+j])
			}
			if got := h.H[i*k+j]; math.Abs(got-want) > 1e-9*max(1, math.Abs(want)) {
				t.Fatalf("H[%d, %d] = %g, want %g", i, j, got, want)
			}
		}
	}
}

// TestGPTQFactor checks U against its definition: UᵀU is the inverse of the damped H.
func TestGPTQFactor(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const rows, k, damp = 200, 40, 0.01
	h := hessianOf(correlatedInputs(r, rows, k), rows, k).H
	u, err := factor(h, k, damp)
	if err != nil {
		t.Fatal(err)
	}
	var mean float64
	for i := range k {
		mean += h[i*k+i] / k
	}
	for i := range k {
		for j := range k {
			if j < i && u[i*k+j] != 0 {
				t.Fatalf("U[%d, %d] = %g below the diagonal", i, j, u[i*k+j])
			}
			// (UᵀU·H_damped)[i, j]
			var s float64
			for m := range k {
				hd := h[m*k+j]
				if m == j {
					hd += damp * mean
				}
				var uu float64 // (UᵀU)[i, m]
				for l := range k {
					uu += u[l*k+i] * u[l*k+m]
				}
				s += uu * hd
			}
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(s-want) > 1e-8 {
				t.Fatalf("(UᵀU·H)[%d, %d] = %g, want %g", i, j, s, want)
			}
		}
	}
}

// TestGPTQDiagonalHessian: with no correlation between inputs there is nothing to
// compensate, and GPTQ is round to nearest. With H a multiple of the identity the result
// is quant.QuantizeQ4's bit for bit; with another diagonal the group scales may differ (the
// error of an input with more energy counts more), but every weight is its own rounding.
func TestGPTQDiagonalHessian(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const n, k, g = 24, 176, 16
	w := testmat.Gaussian(r, n*k, 0.02)
	wantQ, wantS, err := quant.QuantizeQ4(w, n, k, g)
	if err != nil {
		t.Fatal(err)
	}
	h := make([]float64, k*k)
	for i := range k {
		h[i*k+i] = 3
	}
	gotQ, gotS, err := QuantizeQ4(w, n, k, g, h)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotQ, wantQ) || !slices.Equal(gotS, wantS) {
		t.Errorf("H = 3·I: GPTQ differs from round to nearest")
	}
	for i := range k {
		h[i*k+i] = 0.1 + float64(i%7)
	}
	if gotQ, gotS, err = QuantizeQ4(w, n, k, g, h); err != nil {
		t.Fatal(err)
	}
	got := quant.DequantizeQ4(gotQ, gotS, n, k, g)
	for i, v := range w {
		d := quant.F16ToFloat32(gotS[i/g])
		if want := quant.Q4Level(v, 1/d) * d; got[i] != want {
			t.Fatalf("diagonal H: weight %d = %g became %g, want its rounding %g at scale %g", i, v, got[i], want, d)
		}
	}
}

// gptqReference is GPTQ as the paper writes it, one column at a time with the whole rest
// of the row corrected immediately (no lazy batches, no tiles); it returns the dequantized
// weights.
func gptqReference(w []float32, n, k, g int, h []float64) []float32 {
	u, err := factor(h, k, DefaultDamp)
	if err != nil {
		panic(err)
	}
	out := make([]float32, n*k)
	q := make([]int8, g)
	grp := make([]float32, g)
	for r := range n {
		row := make([]float64, k)
		for c := range k {
			row[c] = float64(w[r*k+c])
		}
		var d float32
		for c := range k {
			if c%g == 0 {
				for j := range grp {
					grp[j] = float32(row[c+j])
				}
				d = quant.F16ToFloat32(groupScale(row[c:c+g], grp, make([]float64, g), q, u, c, k))
			}
			var l float32
			if d != 0 {
				l = quant.Q4Level(float32(row[c]), 1/d)
			}
			out[r*k+c] = l * d
			e := (row[c] - float64(l*d)) / u[c*k+c]
			for j := c + 1; j < k; j++ {
				row[j] -= e * u[c*k+j]
			}
		}
	}
	return out
}

// TestGPTQOutputError: on inputs with structure, GPTQ's weights are further from W than
// round to nearest's but its outputs closer to X·Wᵀ; the lazy-batched, tiled
// implementation agrees with the one-column-at-a-time definition.
func TestGPTQOutputError(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, c := range []struct{ n, k, g int }{{40, 256, 32}, {33, 176, 16}} { // 176: a block of 128, then 48
		const rows = 600
		x := correlatedInputs(r, rows, c.k)
		w := testmat.Gaussian(r, c.n*c.k, 0.02)
		h := hessianOf(x, rows, c.k).H
		qw, sc, err := quant.QuantizeQ4(w, c.n, c.k, c.g)
		if err != nil {
			t.Fatal(err)
		}
		rtn := quant.DequantizeQ4(qw, sc, c.n, c.k, c.g)
		if qw, sc, err = QuantizeQ4(w, c.n, c.k, c.g, h); err != nil {
			t.Fatal(err)
		}
		gptq := quant.DequantizeQ4(qw, sc, c.n, c.k, c.g)
		rtnOut, gptqOut := outputError(x, w, rtn, rows, c.n, c.k), outputError(x, w, gptq, rows, c.n, c.k)
		t.Logf("[%d, %d] g=%d: relative output error round to nearest %.4f, GPTQ %.4f; relative weight RMS %.4f, %.4f",
			c.n, c.k, c.g, rtnOut, gptqOut, testmat.RelRMS(w, rtn), testmat.RelRMS(w, gptq))
		if !(gptqOut < 0.7*rtnOut) {
			t.Errorf("GPTQ output error %.4f is not well below round to nearest's %.4f", gptqOut, rtnOut)
		}
		if !(testmat.RelRMS(w, gptq) > testmat.RelRMS(w, rtn)) {
			t.Errorf("GPTQ weight error %.4f is not above round to nearest's %.4f", testmat.RelRMS(w, gptq), testmat.RelRMS(w, rtn))
		}
		ref := gptqReference(w, c.n, c.k, c.g, h)
		differ := 0
		for i := range ref {
			if ref[i] != gptq[i] {
				differ++
			}
		}
		if differ > len(ref)/1000 { // float64 sums in another order may flip a rare tie
			t.Errorf("%d of %d weights differ from the one-column-at-a-time GPTQ", differ, len(ref))
		}
	}
}

// TestGPTQDeadInput: an input no calibration row reached is rounded to nearest with its
// group's scale (nothing to compensate it by, no error passed on), not zeroed.
func TestGPTQDeadInput(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const rows, n, k, g, dead = 100, 8, 64, 32, 5
	x := correlatedInputs(r, rows, k)
	for i := range rows {
		x[i*k+dead] = 0
	}
	w := testmat.Gaussian(r, n*k, 0.02)
	qw, sc, err := QuantizeQ4(w, n, k, g, hessianOf(x, rows, k).H)
	if err != nil {
		t.Fatal(err)
	}
	got := quant.DequantizeQ4(qw, sc, n, k, g)
	zeros := 0
	for j := range n {
		d := quant.F16ToFloat32(sc[j*(k/g)+dead/g])
		want := quant.Q4Level(w[j*k+dead], 1/d) * d
		if got[j*k+dead] != want {
			t.Errorf("row %d: dead input's weight %g became %g, want %g (round to nearest at scale %g)", j, w[j*k+dead], got[j*k+dead], want, d)
		}
		if got[j*k+dead] == 0 {
			zeros++
		}
	}
	if zeros == n {
		t.Errorf("every weight of the dead input is 0")
	}
}

func TestGPTQErrors(t *testing.T) {
	const n, k, g = 4, 16, 8
	w := make([]float32, n*k)
	for i := range w {
		w[i] = float32(i%5) - 2
	}
	eye := func() []float64 {
		h := make([]float64, k*k)
		for i := range k {
			h[i*k+i] = 1
		}
		return h
	}
	qw, sc := make([]uint32, n*k/8), make([]uint16, n*k/g)
	cases := []struct {
		name string
		w    []float32
		h    func() []float64
		damp float64
		want string
	}{
		{"short hessian", w, func() []float64 { return make([]float64, k*k-1) }, 0.01, "hessian has 255 elements, want 16×16"},
		{"NaN in hessian", w, func() []float64 { h := eye(); h[3*k+2] = math.NaN(); return h }, 0.01, "hessian [3, 2] is NaN"},
		{"asymmetric", w, func() []float64 { h := eye(); h[1*k+2] = 0.5; return h }, 0.01, "not symmetric"},
		{"negative diagonal", w, func() []float64 { h := eye(); h[4*k+4] = -1; return h }, 0.01, "diagonal [4, 4] = -1 is negative"},
		{"zero damping", w, eye, 0, "damping 0 must be a positive fraction"},
		{"NaN damping", w, eye, math.NaN(), "damping NaN must be a positive fraction"},
		{"indefinite", w, func() []float64 {
			h := eye() // I − 2vvᵀ with v = (1, …, 1)/4: eigenvalue −1
			for i := range k {
				for j := range k {
					h[i*k+j] -= 2.0 / k
				}
			}
			return h
		}, 0.01, "not positive definite"},
		{"NaN weight", func() []float32 { v := slices.Clone(w); v[2*k+9] = float32(math.NaN()); return v }(), eye, 0.01, "weight [2, 9] is NaN"},
	}
	for _, c := range cases {
		err := QuantizeQ4Into(qw, sc, c.w, n, k, g, c.h(), c.damp)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if _, _, err := QuantizeQ4(w, n, k, 12, eye()); err == nil || !strings.Contains(err.Error(), "multiple of 8") {
		t.Errorf("group size 12: error %v", err)
	}
}
