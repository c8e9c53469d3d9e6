//go:build js && wasm

package engine

import (
	"encoding/binary"
	"math"

	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// Each dispatch's Params struct lives in its own 256-byte slot (the uniform offset
// alignment) of a 64 KiB uniform buffer, written once when the plan is built. Per-step
// values (position, sequence length) live in a separate small buffer instead, so a decode
// step rewrites 16 bytes, not every dispatch's parameters.
const (
	paramSlot       = 256
	paramBufferSize = 64 << 10
)

// ParamArena hands out parameter slots and uploads them.
type ParamArena struct {
	dev  *gpu.Device
	bufs []*gpu.Buffer
	used int // slots used in the last buffer
}

// Slot is one dispatch's parameter block.
type Slot struct {
	buf    *gpu.Buffer
	offset uint64
}

func (s Slot) binding(i int) gpu.Binding {
	return gpu.Binding{Binding: i, Buffer: s.buf, Offset: s.offset, Size: paramSlot}
}

// Alloc stores p (at most 256 bytes) in a fresh slot.
func (a *ParamArena) Alloc(p []byte) (Slot, error) {
	if len(a.bufs) == 0 || a.used == paramBufferSize/paramSlot {
		b, err := a.dev.CreateBuffer("params", paramBufferSize, gpu.UsageUniform|gpu.UsageCopyDst)
		if err != nil {
			return Slot{}, err
		}
		a.bufs = append(a.bufs, b)
		a.used = 0
	}
	s := Slot{buf: a.bufs[len(a.bufs)-1], offset: uint64(a.used * paramSlot)}
	a.used++
	padded := make([]byte, paramSlot)
	copy(padded, p)
	return s, a.dev.WriteBuffer(s.buf, s.offset, padded)
}

// params builds a Params struct from 4-byte fields in declaration order: u32 for ints,
// f32 for float32 values. WGSL structs of scalars have the same layout.
func params(fields ...any) []byte {
	b := make([]byte, 0, 4*len(fields))
	for _, f := range fields {
		var v uint32
		switch x := f.(type) {
		case int:
			v = uint32(x)
		case uint32:
			v = x
		case float32:
			v = math.Float32bits(x)
		default:
			panic("engine: unsupported Params field type")
		}
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}
