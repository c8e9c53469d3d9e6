//go:build js && wasm

package kernels

import (
	"encoding/binary"
	"fmt"
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

// ParamArena hands out parameter slots. Plans that live for a session (decode) keep
// their slots; a plan built per request (prefill) is bracketed by Mark and Release so its
// slots are reused by the next one.
type ParamArena struct {
	dev  *gpu.Device
	bufs []*gpu.Buffer
	next int // index of the next free slot over all buffers
}

const slotsPerBuffer = paramBufferSize / paramSlot

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
	if len(p) > paramSlot {
		return Slot{}, fmt.Errorf("params of %d bytes exceed a %d-byte slot", len(p), paramSlot)
	}
	if a.next/slotsPerBuffer == len(a.bufs) {
		b, err := a.dev.CreateBuffer("params", paramBufferSize, gpu.UsageUniform|gpu.UsageCopyDst)
		if err != nil {
			return Slot{}, err
		}
		a.bufs = append(a.bufs, b)
	}
	s := Slot{buf: a.bufs[a.next/slotsPerBuffer], offset: uint64(a.next%slotsPerBuffer) * paramSlot}
	a.next++
	padded := make([]byte, paramSlot)
	copy(padded, p)
	return s, a.dev.WriteBuffer(s.buf, s.offset, padded)
}

// Mark returns the arena's position, for Release.
func (a *ParamArena) Mark() int { return a.next }

// Release frees every slot allocated since mark; plans using them must not run again.
func (a *ParamArena) Release(mark int) { a.next = mark }

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
			panic("kernels: unsupported Params field type")
		}
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}
