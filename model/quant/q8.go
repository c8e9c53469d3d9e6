package quant

import (
	"fmt"
	"math"

	"github.com/cogvlm-web/cogvlm-web/model/internal/parallel"
)

// q8 layout (FORMAT.md): qweight u32 [n][k/4], byte i of word w of row r holds input 4w+i
// as a two's-complement int8 q in −127..127; scales f16 [n][k/g]; the weight is q·scale.

// maxQ8Magnitude is the largest weight a q8 group can hold: its scale m/127 must be a
// finite f16.
const maxQ8Magnitude = 127 * MaxF16

// QuantizeQ8 quantizes the [n, k] matrix w to q8 with groups of g inputs; see
// QuantizeQ8Into.
func QuantizeQ8(w []float32, n, k, g int) (qweight []uint32, scales []uint16, err error) {
	if err := CheckGroups(Q8, n, k, g); err != nil {
		return nil, nil, err
	}
	qweight, scales = make([]uint32, n*k/4), make([]uint16, n*k/g)
	if err := QuantizeQ8Into(qweight, scales, w, n, k, g); err != nil {
		return nil, nil, err
	}
	return qweight, scales, nil
}

// QuantizeQ8Into quantizes the [n, k] matrix w into qweight (n·k/4 words) and scales
// (n·k/g halves): each group's scale is its largest magnitude / 127 rounded to f16, and
// each weight the nearest level of that exact scale (−127..127; the int8 −128 is never
// written, so the code stays symmetric). At 8 bits the error is already ~0.5% of the
// weights' RMS, so no scale search is done. A NaN or Inf weight, or one beyond ±8.3e6, is
// an error naming its [row, column].
func QuantizeQ8Into(qweight []uint32, scales []uint16, w []float32, n, k, g int) error {
	if err := CheckGroups(Q8, n, k, g); err != nil {
		return err
	}
	mustLen("w", len(w), n*k)
	mustLen("qweight", len(qweight), n*k/4)
	mustLen("scales", len(scales), n*k/g)
	return parallel.Rows(n, k, func(r0, r1 int) error {
		for r := r0; r < r1; r++ {
			row := w[r*k : (r+1)*k]
			for j := 0; j < k/g; j++ {
				group := row[j*g : (j+1)*g]
				if err := checkFinite(group, r, j*g); err != nil {
					return err
				}
				m := float32(math.Abs(float64(extreme(group))))
				if m > maxQ8Magnitude {
					return fmt.Errorf("weight magnitude %g in row %d is too large for a q8 group (f16 scale limit ±%d)", m, r, maxQ8Magnitude)
				}
				h := F16FromFloat32(m / 127)
				d := F16ToFloat32(h)
				if d == 0 {
					h = 0 // all zeros, or below what an f16 scale can represent
				}
				scales[r*(k/g)+j] = h
				words := qweight[(r*k+j*g)/4:][:g/4]
				for wi := range words {
					var word uint32
					for i := range 4 {
						var l float32
						if d != 0 {
							l = min(max(float32(math.RoundToEven(float64(group[4*wi+i]/d))), -127), 127)
						}
						word |= uint32(uint8(int8(l))) << (8 * i)
					}
					words[wi] = word
				}
			}
		}
		return nil
	})
}

// DequantizeQ8 expands a q8 [n, k] matrix to float32; see DequantizeQ8Into.
func DequantizeQ8(qweight []uint32, scales []uint16, n, k, g int) []float32 {
	dst := make([]float32, n*k)
	DequantizeQ8Into(dst, qweight, scales, n, k, g)
	return dst
}

// DequantizeQ8Into writes w[r][c] = q·scale[r][c/g] into dst [n, k]; the product is exact
// in float32. Rows are spread over GOMAXPROCS goroutines. Slices of the wrong length
// panic.
func DequantizeQ8Into(dst []float32, qweight []uint32, scales []uint16, n, k, g int) {
	mustLen("dst", len(dst), n*k)
	mustLen("qweight", len(qweight), n*k/4)
	mustLen("scales", len(scales), n*k/g)
	_ = parallel.Rows(n, k, func(r0, r1 int) error {
		DequantizeQ8Rows(dst[r0*k:r1*k], qweight[r0*k/4:r1*k/4], scales[r0*k/g:r1*k/g], r1-r0, k, g)
		return nil
	})
}

// DequantizeQ8Rows is DequantizeQ8Into on the calling goroutine (see DequantizeQ4Rows).
func DequantizeQ8Rows(dst []float32, qweight []uint32, scales []uint16, n, k, g int) {
	mustLen("dst", len(dst), n*k)
	mustLen("qweight", len(qweight), n*k/4)
	mustLen("scales", len(scales), n*k/g)
	for c := 0; c < n*k; c += 4 {
		word := qweight[c/4]
		d := F16ToFloat32(scales[c/g])
		for i := range 4 {
			dst[c+i] = float32(int8(word>>(8*i))) * d
		}
	}
}

// MatMulQ8 computes out[m, n] = x[m, k] · Wᵀ (+ bias) for a q8 weight W [n, k], in the
// same float32 order as MatMulQ4: per group s = Σ x·q, then acc += s·scale, then + bias.
// bias has length n or is nil. Slices of the wrong length panic.
func MatMulQ8(out, x []float32, qweight []uint32, scales []uint16, bias []float32, m, k, n, g int) {
	mustLen("out", len(out), m*n)
	mustLen("x", len(x), m*k)
	mustLen("qweight", len(qweight), n*k/4)
	mustLen("scales", len(scales), n*k/g)
	if bias != nil {
		mustLen("bias", len(bias), n)
	}
	_ = parallel.Rows(n, m*k, func(j0, j1 int) error {
		for j := j0; j < j1; j++ {
			words := qweight[j*k/4 : (j+1)*k/4]
			for i := range m {
				xi := x[i*k : (i+1)*k]
				var acc float32
				for gi := 0; gi < k/g; gi++ {
					var s float32
					for c := gi * g; c < (gi+1)*g; c++ {
						s += xi[c] * float32(int8(words[c/4]>>(8*(c%4))))
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
