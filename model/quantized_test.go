package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

func scaled(v []float32, s float32) []float32 {
	for i := range v {
		v[i] *= s
	}
	return v
}

// TestMatMulQuantized compares the CPU twins with a float64 product of the dequantized
// weights, with and without bias, for shapes that take both the serial and parallel path.
func TestMatMulQuantized(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		enc        quant.Encoding
		m, k, n, g int
		bias       bool
	}{
		{quant.Q4, 1, 64, 8, 32, false},
		{quant.Q4, 3, 256, 96, 32, true},
		{quant.Q4, 5, 176, 40, 16, true},
		{quant.Q8, 1, 64, 8, 32, true},
		{quant.Q8, 4, 512, 130, 64, false},
	} {
		w := scaled(randSlice(r, tc.n*tc.k), 0.1)
		x := randSlice(r, tc.m*tc.k)
		var bias []float32
		if tc.bias {
			bias = randSlice(r, tc.n)
		}
		out := make([]float32, tc.m*tc.n)
		var deq []float32
		if tc.enc == quant.Q4 {
			qw, sc, err := quant.QuantizeQ4(w, tc.n, tc.k, tc.g)
			if err != nil {
				t.Fatal(err)
			}
			deq = quant.DequantizeQ4(qw, sc, tc.n, tc.k, tc.g)
			MatMulQ4(out, x, qw, sc, bias, tc.m, tc.k, tc.n, tc.g)
		} else {
			qw, sc, err := quant.QuantizeQ8(w, tc.n, tc.k, tc.g)
			if err != nil {
				t.Fatal(err)
			}
			deq = quant.DequantizeQ8(qw, sc, tc.n, tc.k, tc.g)
			MatMulQ8(out, x, qw, sc, bias, tc.m, tc.k, tc.n, tc.g)
		}
		var worst float64
		for i := range tc.m {
			for j := range tc.n {
				var want, mag float64
				for c := range tc.k {
					p := float64(x[i*tc.k+c]) * float64(deq[j*tc.k+c])
					want += p
					mag += math.Abs(p)
				}
				if bias != nil {
					want += float64(bias[j])
					mag += math.Abs(float64(bias[j]))
				}
				// float32 accumulation: error relative to the sum of magnitudes
				worst = max(worst, math.Abs(float64(out[i*tc.n+j])-want)/mag)
			}
		}
		if worst > 1e-6 {
			t.Errorf("%s m=%d k=%d n=%d g=%d: relative error %.3g > 1e-6", tc.enc, tc.m, tc.k, tc.n, tc.g, worst)
		}
	}
}

// TestEmbeddingQuantized: a gather from a packed table is the gather from its
// dequantized form, bit for bit.
func TestEmbeddingQuantized(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const vocab, dim, g = 11, 96, 32
	table := randSlice(r, vocab*dim)
	ids := []int{3, 0, 10, 3}
	for _, enc := range []quant.Encoding{quant.Q4, quant.Q8} {
		quantize, dequantize, embed := quant.QuantizeQ4, quant.DequantizeQ4, EmbeddingQ4
		if enc == quant.Q8 {
			quantize, dequantize, embed = quant.QuantizeQ8, quant.DequantizeQ8, EmbeddingQ8
		}
		qw, sc, err := quantize(table, vocab, dim, g)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, len(ids)*dim)
		Embedding(want, ids, dequantize(qw, sc, vocab, dim, g), dim)
		got := make([]float32, len(ids)*dim)
		embed(got, ids, qw, sc, dim, g)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the gather differs from Embedding over the dequantized table", enc)
		}
	}
}
