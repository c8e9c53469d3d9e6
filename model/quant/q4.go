package quant

import (
	"fmt"
	"math"

	"github.com/cogvlm-web/cogvlm-web/model/internal/parallel"
)

// q4 layout (FORMAT.md): qweight u32 [n][k/8], word w of row r holds inputs 8w..8w+7,
// nibble i (bits 4i..4i+3) holding input 8w+i as q in 0..15; scales f16 [n][k/g]; the
// weight is (q − 8)·scale.

// q4Divisors are the candidate scales of a group, as divisors of its largest-magnitude
// element m: scale = −m/c puts m at level −c. c = 8 is the plain signed-absmax choice
// (m lands on the extra negative level, so all 16 levels are used); c > 8 clips m to −8 in
// exchange for finer steps for the other 31 weights, which wins more often than not on
// Gaussian weights. The measurements are in FORMAT.md.
var q4Divisors = [...]float32{7, 7.25, 7.5, 7.75, 8, 8.25, 8.5, 8.75, 9}

// maxQ4Magnitude is the largest weight a q4 group can hold: its scale −m/7 must be a
// finite f16.
const maxQ4Magnitude = 7 * MaxF16

// QuantizeQ4 quantizes the [n, k] matrix w to q4 with groups of g inputs; see
// QuantizeQ4Into.
func QuantizeQ4(w []float32, n, k, g int) (qweight []uint32, scales []uint16, err error) {
	if err := CheckGroups(Q4, n, k, g); err != nil {
		return nil, nil, err
	}
	qweight, scales = make([]uint32, n*k/8), make([]uint16, n*k/g)
	if err := QuantizeQ4Into(qweight, scales, w, n, k, g); err != nil {
		return nil, nil, err
	}
	return qweight, scales, nil
}

// QuantizeQ4Into quantizes the [n, k] matrix w into qweight (n·k/8 words) and scales
// (n·k/g halves). Each group gets the f16 scale, among −m/c for the q4Divisors and the
// least-squares refit of the best of those, that minimises the group's squared error
// after rounding to nearest; levels are computed with that exact f16 scale. Rows are
// spread over GOMAXPROCS goroutines. A NaN or Inf weight, or one beyond ±458528, is an
// error naming its [row, column].
func QuantizeQ4Into(qweight []uint32, scales []uint16, w []float32, n, k, g int) error {
	if err := CheckGroups(Q4, n, k, g); err != nil {
		return err
	}
	mustLen("w", len(w), n*k)
	mustLen("qweight", len(qweight), n*k/8)
	mustLen("scales", len(scales), n*k/g)
	return parallel.Rows(n, k, func(r0, r1 int) error {
		q := make([]int8, g)
		for r := r0; r < r1; r++ {
			row := w[r*k : (r+1)*k]
			for j := 0; j < k/g; j++ {
				group := row[j*g : (j+1)*g]
				if err := CheckQ4Group(group, r, j*g); err != nil {
					return err
				}
				scales[r*(k/g)+j] = Q4GroupScale(group, q)
				words := qweight[(r*k+j*g)/8:][:g/8]
				for wi := range words {
					var word uint32
					for i := range 8 {
						word |= uint32(q[8*wi+i]+8) << (4 * i)
					}
					words[wi] = word
				}
			}
		}
		return nil
	})
}

// CheckQ4Group checks that a group of weights, the one at [row, col…], can be stored in
// q4: every weight finite and none beyond ±458528 (the scale −m/7 of its largest must be a
// finite f16).
func CheckQ4Group(group []float32, row, col int) error {
	if err := checkFinite(group, row, col); err != nil {
		return err
	}
	if m := extreme(group); math.Abs(float64(m)) > maxQ4Magnitude {
		return fmt.Errorf("weight %g in row %d is too large for a q4 group (f16 scale limit ±%d)", m, row, maxQ4Magnitude)
	}
	return nil
}

// Q4ScaleCandidates are the scales −m/c, for the q4Divisors c, of the group x whose
// largest-magnitude weight is m, as f16 bits: the scales QuantizeQ4Into and GPTQ
// (model/quant/gptq) choose among (0 for an all-zero group).
func Q4ScaleCandidates(x []float32) [len(q4Divisors)]uint16 {
	var hs [len(q4Divisors)]uint16
	if m := extreme(x); m != 0 {
		for i, c := range q4Divisors {
			hs[i] = F16FromFloat32(-m / c)
		}
	}
	return hs
}

// Q4GroupScale is QuantizeQ4Into's choice for one group x (CheckQ4Group passed): it picks
// the scale (returned as f16 bits) and writes the levels q − 8 (−8..7) into q.
func Q4GroupScale(x []float32, q []int8) uint16 {
	best, bestScale := float32(math.Inf(1)), uint16(0)
	try := func(h uint16) {
		d := F16ToFloat32(h)
		if d == 0 || !finite(d) {
			return // a scale that underflowed to 0 (or overflowed) represents nothing
		}
		if e := sseQ4(x, d); e < best {
			best, bestScale = e, h
		}
	}
	for _, h := range Q4ScaleCandidates(x) {
		try(h)
	}
	if bestScale == 0 {
		clear(q) // all zeros, or so small that every scale rounds to 0 in f16
		return 0
	}
	// Least-squares scale for the chosen levels: argmin_d Σ(x − q·d)² = Σx·q / Σq².
	levelsQ4(x, F16ToFloat32(bestScale), q)
	var xq, qq float32
	for i, v := range q {
		xq += x[i] * float32(v)
		qq += float32(v) * float32(v)
	}
	if refit := F16FromFloat32(xq / qq); refit != bestScale { // qq > 0: a non-zero scale left some level non-zero
		try(refit)
		if bestScale == refit {
			levelsQ4(x, F16ToFloat32(bestScale), q)
		}
	}
	return bestScale
}

// Q4Level is the nearest q4 level of v·inv in −8..7 (the weight is level·scale, inv being
// 1/scale): round half to even, then clamp.
func Q4Level(v, inv float32) float32 {
	// compares rather than min/max: those also order NaNs and signed zeros, which costs
	// twice the instructions in this hot loop (the weights are known finite)
	l := roundEven(v * inv)
	if l < -8 {
		l = -8
	} else if l > 7 {
		l = 7
	}
	return l
}

// levelsQ4 writes the level of every weight of x for scale d into q.
func levelsQ4(x []float32, d float32, q []int8) {
	inv := 1 / d
	for i, v := range x {
		q[i] = int8(Q4Level(v, inv))
	}
}

// sseQ4 is the squared error of x rounded to scale d. It is the converter's innermost
// loop (every weight, once per candidate scale): four independent sums keep the adds
// from waiting on each other. len(x) is a multiple of 8.
func sseQ4(x []float32, d float32) float32 {
	inv := 1 / d
	var s0, s1, s2, s3 float32
	for i := 0; i+4 <= len(x); i += 4 {
		e0 := x[i] - Q4Level(x[i], inv)*d
		e1 := x[i+1] - Q4Level(x[i+1], inv)*d
		e2 := x[i+2] - Q4Level(x[i+2], inv)*d
		e3 := x[i+3] - Q4Level(x[i+3], inv)*d
		s0 += e0 * e0
		s1 += e1 * e1
		s2 += e2 * e2
		s3 += e3 * e3
	}
	return (s0 + s1) + (s2 + s3)
}

// roundMagic is 1.5·2²³: adding it to a float32 of magnitude below 2²² pushes the
// fraction bits out of the mantissa, so the addition itself rounds to the nearest
// integer, ties to even (the FPU's default mode), and subtracting it back is exact.
const roundMagic = 0x1.8p23

// roundEven is math.RoundToEven for |v| < 2²², without the float64 round trip: it is
// the converter's innermost operation (once per weight per candidate scale).
func roundEven(v float32) float32 {
	r := v + roundMagic
	return r - roundMagic
}

// extreme is the element of largest magnitude, with its sign (the first one on ties).
func extreme(x []float32) float32 {
	var m, a float32
	for _, v := range x {
		if av := float32(math.Abs(float64(v))); av > a {
			m, a = v, av
		}
	}
	return m
}

// DequantizeQ4 expands a q4 [n, k] matrix to float32; see DequantizeQ4Into.
func DequantizeQ4(qweight []uint32, scales []uint16, n, k, g int) []float32 {
	dst := make([]float32, n*k)
	DequantizeQ4Into(dst, qweight, scales, n, k, g)
	return dst
}

// DequantizeQ4Into writes w[r][c] = (q − 8)·scale[r][c/g] into dst [n, k]. The product
// is exact in float32 (a 4-bit level times an f16), so every implementation agrees
// bit for bit. Rows are spread over GOMAXPROCS goroutines. Slices of the wrong length
// panic.
func DequantizeQ4Into(dst []float32, qweight []uint32, scales []uint16, n, k, g int) {
	mustLen("dst", len(dst), n*k)
	mustLen("qweight", len(qweight), n*k/8)
	mustLen("scales", len(scales), n*k/g)
	_ = parallel.Rows(n, k, func(r0, r1 int) error {
		DequantizeQ4Rows(dst[r0*k:r1*k], qweight[r0*k/8:r1*k/8], scales[r0*k/g:r1*k/g], r1-r0, k, g)
		return nil
	})
}

// DequantizeQ4Rows is DequantizeQ4Into on the calling goroutine, for callers that spread
// blocks of rows over their own workers (the CPU reference's packed matmul). The rows of
// a q4 matrix are contiguous in qweight and scales, so rows [r0, r1) of a matrix are
// qweight[r0·k/8 : r1·k/8] and scales[r0·k/g : r1·k/g].
func DequantizeQ4Rows(dst []float32, qweight []uint32, scales []uint16, n, k, g int) {
	mustLen("dst", len(dst), n*k)
	mustLen("qweight", len(qweight), n*k/8)
	mustLen("scales", len(scales), n*k/g)
	for c := 0; c < n*k; c += 8 {
		word := qweight[c/8]
		d := F16ToFloat32(scales[c/g])
		for i := range 8 {
			dst[c+i] = float32(int32(word>>(4*i)&0xf)-8) * d
		}
	}
}

// MatMulQ4 computes out[m, n] = x[m, k] · Wᵀ (+ bias) for a q4 weight W [n, k], the CPU
// twin of the quantized matmul kernels. Its arithmetic is float32 in this order: per
// group, s = Σ x·(q − 8) over the group's inputs in order, then acc += s·scale over the
// groups in order, then + bias. bias has length n or is nil. Slices of the wrong length
// panic.
func MatMulQ4(out, x []float32, qweight []uint32, scales []uint16, bias []float32, m, k, n, g int) {
	mustLen("out", len(out), m*n)
	mustLen("x", len(x), m*k)
	mustLen("qweight", len(qweight), n*k/8)
	mustLen("scales", len(scales), n*k/g)
	if bias != nil {
		mustLen("bias", len(bias), n)
	}
	_ = parallel.Rows(n, m*k, func(j0, j1 int) error {
		for j := j0; j < j1; j++ {
			words := qweight[j*k/8 : (j+1)*k/8]
			for i := range m {
				xi := x[i*k : (i+1)*k]
				var acc float32
				for gi := 0; gi < k/g; gi++ {
					var s float32
					for c := gi * g; c < (gi+1)*g; c++ {
						s += xi[c] * float32(int32(words[c/8]>>(4*(c%8))&0xf)-8)
					}
					acc += s * F16ToFloat32(scales[j*(k/g)+gi])
				}
				if bias != nil {
					acc += bias[j]
				}
				out[i*n+j] = acc
			}
		}
		return nil
	})
}
