package quant

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model/internal/testmat"
)

// TestQ4PackingLayout pins the exact bits the WGSL kernels read: word w of a row holds
// inputs 8w..8w+7, nibble i (bits 4i..4i+3) holds input 8w+i as level + 8.
func TestQ4PackingLayout(t *testing.T) {
	levels := []int{3, -8, 0, 7, -1, 2, -5, 1, -2, 4, -6, 6, -3, 5, -7, -4}
	const d = 0.5 // the extreme −4 sits on level −8 exactly, so the search picks 0.5 with zero error
	w := make([]float32, len(levels))
	for i, l := range levels {
		w[i] = float32(l) * d
	}
	qweight, scales, err := QuantizeQ4(w, 1, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	// nibbles 0xB,0x0,0x8,0xF,0x7,0xA,0x3,0x9 | 0x6,0xC,0x2,0xE,0x5,0xD,0x1,0x4, input 0 lowest
	wantWords := []uint32{0x93A7F80B, 0x41D5E2C6}
	if !slices.Equal(qweight, wantWords) {
		t.Errorf("qweight = %#08x, want %#08x", qweight, wantWords)
	}
	// −m/8 with m = −4: +0.5 (f16 0x3800)
	if !slices.Equal(scales, []uint16{0x3800}) {
		t.Errorf("scales = %#04x, want [0x3800]", scales)
	}
	if got := DequantizeQ4(wantWords, []uint16{0x3800}, 1, 16, 16); !slices.Equal(got, w) {
		t.Errorf("DequantizeQ4 = %v, want %v", got, w)
	}
	// A negative scale (extreme positive) flips every level's sign.
	neg := DequantizeQ4(wantWords, []uint16{0xB800}, 1, 16, 16)
	for i := range neg {
		if neg[i] != -w[i] {
			t.Fatalf("DequantizeQ4 with scale −0.5: [%d] = %g, want %g", i, neg[i], -w[i])
		}
	}
}

// TestQ8PackingLayout: byte i of word w holds input 4w+i as a two's-complement int8.
func TestQ8PackingLayout(t *testing.T) {
	levels := []int{127, -127, 0, 1, -1, 64, -64, 100}
	const d = 0.25 // max magnitude 31.75 / 127 = 0.25 exactly
	w := make([]float32, len(levels))
	for i, l := range levels {
		w[i] = float32(l) * d
	}
	qweight, scales, err := QuantizeQ8(w, 1, 8, 8)
	if err != nil {
		t.Fatal(err)
	}
	wantWords := []uint32{0x0100817F, 0x64C040FF}
	if !slices.Equal(qweight, wantWords) || !slices.Equal(scales, []uint16{0x3400}) {
		t.Errorf("qweight = %#08x scales = %#04x, want %#08x [0x3400]", qweight, scales, wantWords)
	}
	if got := DequantizeQ8(wantWords, []uint16{0x3400}, 1, 8, 8); !slices.Equal(got, w) {
		t.Errorf("DequantizeQ8 = %v, want %v", got, w)
	}
}

// TestQ4RoundTrip checks round-to-nearest against the stored scale for every weight
// (outliers included, as real checkpoints have them) and the overall error on Gaussian
// weights (the figure FORMAT.md records).
func TestQ4RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n, k, g = 256, 1024, 32
	w := testmat.Gaussian(r, n*k, 0.02)
	qweight, scales, err := QuantizeQ4(w, n, k, g)
	if err != nil {
		t.Fatal(err)
	}
	got := DequantizeQ4(qweight, scales, n, k, g)
	// 1M Gaussian weights measured 0.0810 (absmax/7 alone: 0.0970); see FORMAT.md
	rms := testmat.RelRMS(w, got)
	t.Logf("q4 g=%d relative RMS error on Gaussian weights: %.5f", g, rms)
	if rms > 0.0815 {
		t.Errorf("q4 relative RMS error %.5f > 0.0815", rms)
	}

	for i := range 64 {
		w[r.IntN(n*k)] = float32(0.5 * float64(i%2*2-1))
	}
	if err := QuantizeQ4Into(qweight, scales, w, n, k, g); err != nil {
		t.Fatal(err)
	}
	DequantizeQ4Into(got, qweight, scales, n, k, g)
	for i, x := range w {
		d := math.Abs(float64(F16ToFloat32(scales[i/g])))
		v := float64(got[i])
		// clipped to an end level is the only way to miss the nearest level
		clipped := math.Abs(v) >= 7*d && math.Abs(float64(x)) > math.Abs(v)
		if math.Abs(float64(x)-v) > d/2*(1+1e-5) && !clipped {
			t.Fatalf("weight %d = %g dequantizes to %g (scale %g): not the nearest level", i, x, v, d)
		}
	}
}

func TestQ8RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n, k, g = 128, 512, 32
	w := testmat.Gaussian(r, n*k, 1)
	qweight, scales, err := QuantizeQ8(w, n, k, g)
	if err != nil {
		t.Fatal(err)
	}
	got := DequantizeQ8(qweight, scales, n, k, g)
	for i, x := range w {
		d := float64(F16ToFloat32(scales[i/g]))
		if e := math.Abs(float64(x) - float64(got[i])); e > d/2*(1+1e-5) {
			t.Fatalf("weight %d = %g dequantizes to %g: error %g > scale/2 = %g", i, x, got[i], e, d/2)
		}
	}
	rms := testmat.RelRMS(w, got)
	t.Logf("q8 g=%d relative RMS error on Gaussian weights: %.5f", g, rms)
	if rms > 0.0055 {
		t.Errorf("q8 relative RMS error %.5f > 0.0055", rms)
	}
}

func TestQuantizeSpecialGroups(t *testing.T) {
	tiny := float32(1e-9) // every candidate scale underflows f16
	for _, tc := range []struct {
		name string
		w    []float32
	}{
		{"zeros", make([]float32, 16)},
		{"below f16", []float32{tiny, -tiny, tiny, 0, 0, 0, 0, 0, tiny, 0, 0, 0, 0, 0, 0, -tiny}},
	} {
		for _, q := range []struct {
			enc   Encoding
			quant func([]float32, int, int, int) ([]uint32, []uint16, error)
			deq   func([]uint32, []uint16, int, int, int) []float32
		}{{Q4, QuantizeQ4, DequantizeQ4}, {Q8, QuantizeQ8, DequantizeQ8}} {
			qw, sc, err := q.quant(tc.w, 1, 16, 8)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, q.enc, err)
			}
			if got := q.deq(qw, sc, 1, 16, 8); slices.ContainsFunc(got, func(v float32) bool { return v != 0 }) {
				t.Errorf("%s %s: dequantized %v, want zeros", tc.name, q.enc, got)
			}
		}
	}
}

func TestQuantizeErrors(t *testing.T) {
	row := func(at int, v float32) []float32 {
		w := make([]float32, 2*64)
		w[at] = v
		return w
	}
	for _, tc := range []struct {
		name    string
		enc     Encoding
		w       []float32
		n, k, g int
		want    string
	}{
		{"K not a multiple of G", Q4, make([]float32, 2*176), 2, 176, 32, "K=176 is not a multiple of the q4 group size 32"},
		{"q8 K not a multiple of G", Q8, make([]float32, 2*40), 2, 40, 32, "K=40 is not a multiple of the q8 group size 32"},
		{"q4 group not a multiple of 8", Q4, make([]float32, 2*64), 2, 64, 4, "group size 4 must be a positive multiple of 8"},
		{"q8 group not a multiple of 4", Q8, make([]float32, 2*64), 2, 64, 6, "group size 6 must be a positive multiple of 4"},
		{"NaN", Q4, row(64+5, float32(math.NaN())), 2, 64, 32, "weight [1, 5] is NaN"},
		{"Inf", Q8, row(3, float32(math.Inf(-1))), 2, 64, 32, "weight [0, 3] is -Inf"},
		{"q4 too large", Q4, row(70, 1e6), 2, 64, 32, "too large for a q4 group"},
		{"q8 too large", Q8, row(1, 1e7), 2, 64, 32, "too large for a q8 group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.enc == Q4 {
				_, _, err = QuantizeQ4(tc.w, tc.n, tc.k, tc.g)
			} else {
				_, _, err = QuantizeQ8(tc.w, tc.n, tc.k, tc.g)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestQuantizeErrorNamesFirstRow: rows are quantized in parallel, yet the error is always
// the one of the lowest bad row.
func TestQuantizeErrorNamesFirstRow(t *testing.T) {
	const n, k = 512, 256
	w := make([]float32, n*k)
	for _, r := range []int{300, 17, 480} {
		w[r*k+9] = float32(math.NaN())
	}
	for range 5 {
		if _, _, err := QuantizeQ4(w, n, k, 32); err == nil || !strings.Contains(err.Error(), "weight [17, 9]") {
			t.Fatalf("error %v, want one naming weight [17, 9]", err)
		}
	}
}

func TestF16Rounding(t *testing.T) {
	for _, tc := range []struct {
		in   float32
		want uint16
	}{
		{1, 0x3C00},
		{-2, 0xC000},
		{0.5, 0x3800},
		{65504, 0x7BFF},                                // largest finite
		{65519, 0x7BFF},                                // rounds down to it
		{65520, 0x7C00},                                // halfway to 2^16 rounds up: +Inf
		{1 + 1.0/2048, 0x3C00},                         // tie between 1 and 1+2^-10: even
		{1 + 3.0/2048, 0x3C02},                         // tie between 1+2^-10 and 1+2^-9: even
		{1 + 1.0/2048 + 1.0/65536, 0x3C01},             // just above the tie
		{float32(math.Ldexp(1, -24)), 0x0001},          // smallest subnormal
		{float32(math.Ldexp(1, -25)), 0x0000},          // tie with 0: even
		{float32(math.Ldexp(1.5, -24)), 0x0002},        // tie between subnormals 1 and 2: even
		{float32(math.Ldexp(1, -14)), 0x0400},          // smallest normal
		{float32(math.Ldexp(1023, -24)), 0x03FF},       // largest subnormal
		{float32(math.Copysign(0, -1)), 0x8000},        // -0 keeps its sign
		{float32(math.Inf(1)), 0x7C00},                 //
		{float32(math.Inf(-1)), 0xFC00},                //
		{float32(math.Ldexp(1+1.0/2048, -14)), 0x0400}, // tie just above the smallest normal: even
	} {
		got := F16FromFloat32(tc.in)
		if got != tc.want {
			t.Errorf("F16FromFloat32(%g) = %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
	if h := F16FromFloat32(float32(math.NaN())); h&0x7C00 != 0x7C00 || h&0x3FF == 0 {
		t.Errorf("F16FromFloat32(NaN) = %#04x, not a NaN", h)
	}
	// every finite half survives the round trip through float32
	for h := range 1 << 16 {
		if h&0x7C00 == 0x7C00 {
			continue
		}
		if got := F16FromFloat32(F16ToFloat32(uint16(h))); got != uint16(h) {
			t.Fatalf("half %#04x → %g → %#04x", h, F16ToFloat32(uint16(h)), got)
		}
	}
}

func TestEncodeF16(t *testing.T) {
	dst := make([]uint16, 3)
	if err := EncodeF16(dst, []float32{1, -65504, 0.1}); err != nil {
		t.Fatal(err)
	}
	if want := []uint16{0x3C00, 0xFBFF, 0x2E66}; !slices.Equal(dst, want) {
		t.Errorf("EncodeF16 = %#04x, want %#04x", dst, want)
	}
	for _, tc := range []struct {
		v    float32
		want string
	}{
		{70000, "element 1 is 70000, outside the f16 range"},
		{float32(math.NaN()), "element 1 is NaN"},
		{float32(math.Inf(1)), "element 1 is +Inf"},
	} {
		if err := EncodeF16(dst, []float32{0, tc.v, 0}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("EncodeF16(%g): error %v, want %q", tc.v, err, tc.want)
		}
	}
}

// TestMatMulQuantized compares the CPU twins with a float64 product of the dequantized
// weights, with and without bias, for shapes that take both the serial and parallel path.
func TestMatMulQuantized(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		enc        Encoding
		m, k, n, g int
		bias       bool
	}{
		{Q4, 1, 64, 8, 32, false},
		{Q4, 3, 256, 96, 32, true},
		{Q4, 5, 176, 40, 16, true},
		{Q8, 1, 64, 8, 32, true},
		{Q8, 4, 512, 130, 64, false},
	} {
		w := testmat.Gaussian(r, tc.n*tc.k, 0.1)
		x := testmat.Gaussian(r, tc.m*tc.k, 1)
		var bias []float32
		if tc.bias {
			bias = testmat.Gaussian(r, tc.n, 1)
		}
		out := make([]float32, tc.m*tc.n)
		var deq []float32
		if tc.enc == Q4 {
			qw, sc, err := QuantizeQ4(w, tc.n, tc.k, tc.g)
			if err != nil {
				t.Fatal(err)
			}
			deq = DequantizeQ4(qw, sc, tc.n, tc.k, tc.g)
			MatMulQ4(out, x, qw, sc, bias, tc.m, tc.k, tc.n, tc.g)
		} else {
			qw, sc, err := QuantizeQ8(w, tc.n, tc.k, tc.g)
			if err != nil {
				t.Fatal(err)
			}
			deq = DequantizeQ8(qw, sc, tc.n, tc.k, tc.g)
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

func TestParseEncoding(t *testing.T) {
	for _, e := range Encodings {
		if got, err := ParseEncoding(string(e)); err != nil || got != e {
			t.Errorf("ParseEncoding(%q) = %q, %v", e, got, err)
		}
	}
	if _, err := ParseEncoding("q3"); err == nil || !strings.Contains(err.Error(), `"q3"`) {
		t.Errorf("ParseEncoding(q3): error %v, want one naming q3", err)
	}
}

// BenchmarkQuantizeQ4 is the converter's inner loop: one 4096×4096 layer of CogVLM.
func BenchmarkQuantizeQ4(b *testing.B) {
	const n, k, g = 4096, 4096, 32
	w := testmat.Gaussian(rand.New(rand.NewPCG(7, 8)), n*k, 0.02)
	qw, sc := make([]uint32, n*k/8), make([]uint16, n*k/g)
	b.SetBytes(n * k * 2) // bf16 checkpoint bytes
	for b.Loop() {
		if err := QuantizeQ4Into(qw, sc, w, n, k, g); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDequantizeQ4(b *testing.B) {
	const n, k, g = 4096, 4096, 32
	qw, sc, _ := QuantizeQ4(testmat.Gaussian(rand.New(rand.NewPCG(9, 10)), n*k, 0.02), n, k, g)
	dst := make([]float32, n*k)
	b.SetBytes(n * k * 2)
	for b.Loop() {
		DequantizeQ4Into(dst, qw, sc, n, k, g)
	}
}

func TestRoundEven(t *testing.T) {
	for _, tc := range []struct{ in, want float32 }{
		{0.5, 0}, {1.5, 2}, {2.5, 2}, {-0.5, 0}, {-1.5, -2}, {-2.5, -2},
		{7.4999, 7}, {-7.5, -8}, {0.49999997, 0}, {3, 3}, {-8.2, -8},
	} {
		if got := roundEven(tc.in); got != tc.want {
			t.Errorf("roundEven(%g) = %g, want %g", tc.in, got, tc.want)
		}
	}
}
