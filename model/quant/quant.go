// Package quant owns the weight encodings of the converted model package and their CPU
// arithmetic: q4 and q8 (integer weights in groups along the input dimension with one f16
// scale per group, packed into u32 words the way the WGSL kernels read them), f16 and f32.
// Quantize* turn float32 weights into that layout; Dequantize* and MatMul* are the exact
// CPU twins the GPU kernels are tested against. model/format/FORMAT.md specifies the layout
// and records why it was chosen. GPTQ, the calibrated choice of q4 levels, builds on the q4
// group functions here (CheckQ4Group, Q4ScaleCandidates, Q4GroupScale, Q4Level) in
// model/quant/gptq, which the browser does not import.
//
// A weight matrix is a PyTorch Linear weight [n, k] (n outputs, k inputs, y = x·Wᵀ);
// groups of g consecutive inputs of one output row share a scale, so k must be a multiple
// of g and g a multiple of the values per word (8 for q4, 4 for q8).
package quant

import (
	"fmt"
	"math"

	"github.com/x448/float16"
)

// Encoding is how a tensor's values are stored in a package.
type Encoding string

const (
	Q4  Encoding = "q4"  // 4-bit symmetric, 8 per u32, f16 scale per group
	Q8  Encoding = "q8"  // 8-bit symmetric (int8), 4 per u32, f16 scale per group
	F16 Encoding = "f16" // IEEE half, little-endian
	F32 Encoding = "f32" // IEEE single, little-endian
)

// Encodings lists every encoding, most compact first.
var Encodings = []Encoding{Q4, Q8, F16, F32}

// ParseEncoding checks an encoding name ("q4", "q8", "f16", "f32").
func ParseEncoding(s string) (Encoding, error) {
	for _, e := range Encodings {
		if string(e) == s {
			return e, nil
		}
	}
	return "", fmt.Errorf("unknown encoding %q (want q4, q8, f16 or f32)", s)
}

// Quantized reports whether the encoding has integer weights and group scales.
func (e Encoding) Quantized() bool { return e == Q4 || e == Q8 }

// PerWord is the number of weights packed into one u32 word of a quantized encoding.
func (e Encoding) PerWord() int {
	switch e {
	case Q4:
		return 8
	case Q8:
		return 4
	}
	return 0
}

// DefaultGroupSize is the number of inputs sharing one scale. 32 makes q4 cost 4.5 bits
// per weight (4 + 16/32); FORMAT.md has the measurements behind it.
const DefaultGroupSize = 32

// CheckGroups validates a quantized [n, k] matrix with groups of g inputs: the errors are
// what a caller wraps with the tensor's name.
func CheckGroups(e Encoding, n, k, g int) error {
	if !e.Quantized() {
		return fmt.Errorf("encoding %q has no groups", e)
	}
	if n <= 0 || k <= 0 {
		return fmt.Errorf("%s needs a non-empty [n, k] matrix, have [%d, %d]", e, n, k)
	}
	if g <= 0 || g%e.PerWord() != 0 {
		return fmt.Errorf("%s group size %d must be a positive multiple of %d (the weights per u32 word)", e, g, e.PerWord())
	}
	if k%g != 0 {
		return fmt.Errorf("input dimension K=%d is not a multiple of the %s group size %d", k, e, g)
	}
	return nil
}

// F16FromFloat32 rounds to the nearest IEEE half, ties to even, with subnormals; values
// beyond ±65504 (after rounding) become ±Inf, NaN stays NaN.
func F16FromFloat32(f float32) uint16 { return float16.Fromfloat32(f).Bits() }

// F16ToFloat32 widens an IEEE half exactly (subnormals included).
func F16ToFloat32(h uint16) float32 { return float16.Frombits(h).Float32() }

// roundF16 is f rounded to f16 precision, as a float32.
func roundF16(f float32) float32 { return F16ToFloat32(F16FromFloat32(f)) }

// MaxF16 is the largest finite IEEE half.
const MaxF16 = 65504

// EncodeF16 rounds src to f16 into dst (len(dst) == len(src)). A value that is not finite,
// or that overflows f16, is an error naming its index: weights that large mean a broken
// checkpoint, and an Inf would poison every activation it touches.
func EncodeF16(dst []uint16, src []float32) error {
	for i, x := range src {
		h := F16FromFloat32(x)
		if !finite(x) || !finite(F16ToFloat32(h)) {
			return fmt.Errorf("element %d is %g, outside the f16 range ±%d", i, x, MaxF16)
		}
		dst[i] = h
	}
	return nil
}

// DecodeF16 widens src into dst (len(dst) == len(src)).
func DecodeF16(dst []float32, src []uint16) {
	for i, h := range src {
		dst[i] = F16ToFloat32(h)
	}
}

func finite(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }

// checkFinite reports the first NaN or Inf of row (offset by base for the message).
func checkFinite(row []float32, n, base int) error {
	for i, x := range row {
		if !finite(x) {
			return fmt.Errorf("weight [%d, %d] is %g", n, base+i, x)
		}
	}
	return nil
}

// mustLen panics with a readable message when a caller passes slices of the wrong size:
// sizes come from shapes the caller has already validated, so this is a programming
// error, not bad input.
func mustLen(what string, got, want int) {
	if got != want {
		panic(fmt.Sprintf("quant: %s has length %d, want %d", what, got, want))
	}
}
