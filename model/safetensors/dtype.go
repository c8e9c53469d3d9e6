package safetensors

import (
	"encoding/binary"
	"math"

	"github.com/x448/float16"
)

// DType is an element type as spelled in a safetensors header ("BF16", "F16", "F32", ...).
type DType string

// The dtypes of the safetensors format. Only BF16, F16 and F32 convert to float32; the
// others are listed so that a checkpoint holding them still opens and can be inspected.
const (
	BF16   DType = "BF16"
	F16    DType = "F16"
	F32    DType = "F32"
	F64    DType = "F64"
	I8     DType = "I8"
	I16    DType = "I16"
	I32    DType = "I32"
	I64    DType = "I64"
	U8     DType = "U8"
	U16    DType = "U16"
	U32    DType = "U32"
	U64    DType = "U64"
	BOOL   DType = "BOOL"
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
	F8E8M0 DType = "F8_E8M0"
)

// elementBytes is the storage size of one element. Sub-byte dtypes (F4, F6_*) are left
// out on purpose: their packing differs between writers, so a file holding them is refused.
var elementBytes = map[DType]int64{
	BF16: 2, F16: 2, F32: 4, F64: 8,
	I8: 1, I16: 2, I32: 4, I64: 8,
	U8: 1, U16: 2, U32: 4, U64: 8,
	BOOL: 1, F8E4M3: 1, F8E5M2: 1, F8E8M0: 1,
}

// Size is the number of bytes of one element, or 0 for a dtype this package cannot size.
func (d DType) Size() int { return int(elementBytes[d]) }

// floatConvertible reports whether ReadFloat32 can convert this dtype.
func (d DType) floatConvertible() bool { return d == BF16 || d == F16 || d == F32 }

// BF16ToFloat32 widens a bfloat16: bfloat16 is the top half of a float32, so this is exact.
func BF16ToFloat32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// Float32ToBF16 rounds to the nearest bfloat16, ties to even, as PyTorch's .to(bfloat16)
// does. NaN stays NaN (quiet, sign kept) instead of rounding into an infinity.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return uint16(b>>16) | 0x0040
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F16ToFloat32 widens an IEEE half, subnormals included (exact).
func F16ToFloat32(h uint16) float32 { return float16.Frombits(h).Float32() }

// Float32ToF16 rounds to the nearest IEEE half, ties to even, with subnormals and overflow
// to infinity.
func Float32ToF16(f float32) uint16 { return float16.Fromfloat32(f).Bits() }

// DecodeFloat32 converts little-endian raw elements of BF16, F16 or F32 into dst
// (len(raw) == len(dst)*dtype.Size()).
func DecodeFloat32(dtype DType, raw []byte, dst []float32) { decodeFloat32(dtype, raw, dst) }

func decodeFloat32(dtype DType, raw []byte, dst []float32) {
	switch dtype {
	case BF16:
		for i := range dst {
			dst[i] = BF16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	}
}
