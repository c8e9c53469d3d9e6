//go:build js && wasm

package kernels

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// The debug mode: RunDebug submits a plan one dispatch at a time and checks each result
// against the op's CPU twin, computed from the GPU's own inputs read back just before the
// dispatch. So a divergence is pinned to the first op that causes it, with its label and
// the worst element, instead of showing up as wrong tokens at the end.

// twin captures an op's inputs before it runs and returns the check to make after it:
// the GPU's output and the CPU twin's output for the same inputs.
type twin func(rd *reader) (after func(rd *reader) (got, want []float32))

// with attaches a CPU twin to a step.
func (s Step) with(t twin) Step { s.twin = t; return s }

// reader reads tensors back for the debug mode; the first error sticks.
type reader struct {
	k   *Kernels
	err error
}

// bytes reads n bytes from t's offset, which may be off a 4-byte boundary (a q8 or q4
// table row's scales): ReadBuffer ranges are whole words, so it reads the words around.
func (rd *reader) bytes(t Tensor, n int) []byte {
	if rd.err != nil {
		return make([]byte, n)
	}
	skip := t.Offset % 4
	b, err := rd.k.Dev.ReadBuffer(t.Buf, t.Offset-skip, (skip+uint64(n)+3)&^3)
	if err != nil {
		rd.err = err
		return make([]byte, n)
	}
	return b[skip : skip+uint64(n)]
}

func (rd *reader) f32(t Tensor, n int) []float32 {
	b := rd.bytes(t, 4*n)
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func (rd *reader) u32(t Tensor, n int) []uint32 {
	b := rd.bytes(t, 4*n)
	v := make([]uint32, n)
	for i := range v {
		v[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return v
}

func (rd *reader) ints(t Tensor, n int) []int {
	v := make([]int, n)
	for i, x := range rd.u32(t, n) {
		v[i] = int(x)
	}
	return v
}

// kv reads elements [first, first+n) of a KV-cache tensor of precision p as float32.
func (rd *reader) kv(t Tensor, p KVPrecision, first, n int) []float32 {
	if p == KVF32 {
		return rd.f32(Tensor{Buf: t.Buf, Offset: t.Offset + uint64(4*first)}, n)
	}
	// f16 elements come in 4-byte words; first is even wherever a cache is read (rows of
	// heads·head_dim, head_dim even)
	h := rd.u16(Tensor{Buf: t.Buf, Offset: t.Offset + uint64(2*first)}, n)
	v := make([]float32, n)
	for i, x := range h {
		v[i] = quant.F16ToFloat32(x)
	}
	return v
}

// roundF16 rounds every element to the nearest f16, as pack2x16float does.
func roundF16(x []float32) {
	for i, v := range x {
		x[i] = roundF32ToF16(v)
	}
}

func (rd *reader) u16(t Tensor, n int) []uint16 {
	b := rd.bytes(t, 2*n)
	v := make([]uint16, n)
	for i := range v {
		v[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return v
}

// DebugError names the first op whose GPU result differs from its CPU twin.
type DebugError struct {
	Index     int
	Label     string
	At        int
	Got, Want float32
}

func (e *DebugError) Error() string {
	return fmt.Sprintf("debug: dispatch %d (%s): element %d is %v on the GPU, %v on the CPU twin", e.Index, e.Label, e.At, e.Got, e.Want)
}

// RunDebug runs p dispatch by dispatch, comparing each output with its CPU twin within
// |got − want| ≤ tol·(1 + |want|). It returns the first mismatch as a *DebugError.
func (k *Kernels) RunDebug(p *Plan, tol float64) error {
	if !debugTwins {
		return fmt.Errorf("debug: this build has no CPU twins (built with -tags cogvlm_release)")
	}
	for i, s := range p.Steps {
		if s.twin == nil {
			return fmt.Errorf("debug: dispatch %d (%s) has no CPU twin", i, s.Label)
		}
		rd := &reader{k: k}
		after := s.twin(rd)
		if err := k.runFromGo(&Plan{Steps: []Step{s}}); err != nil {
			return fmt.Errorf("debug: dispatch %d (%s): %w", i, s.Label, err)
		}
		if err := k.Dev.Sync(); err != nil {
			return fmt.Errorf("debug: dispatch %d (%s): %w", i, s.Label, err)
		}
		got, want := after(rd)
		if rd.err != nil {
			return fmt.Errorf("debug: dispatch %d (%s): %w", i, s.Label, rd.err)
		}
		for j := range want {
			d := math.Abs(float64(got[j]) - float64(want[j]))
			if !(d <= tol*(1+math.Abs(float64(want[j])))) { // NaN fails too
				return &DebugError{Index: i, Label: s.Label, At: j, Got: got[j], Want: want[j]}
			}
		}
	}
	return nil
}

func clone(v []float32) []float32 { return append([]float32(nil), v...) }
