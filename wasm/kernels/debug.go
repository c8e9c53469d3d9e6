//go:build js && wasm

package kernels

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cogvlm-web/cogvlm-web/model"
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

func (rd *reader) bytes(t Tensor, n int) []byte {
	if rd.err != nil {
		return make([]byte, n)
	}
	b, err := rd.k.Dev.ReadBuffer(t.Buf, t.Offset, uint64((n+3)&^3))
	if err != nil {
		rd.err = err
		return make([]byte, n)
	}
	return b[:n]
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

func twinAdd(out, a, b Tensor, n int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := rd.f32(a, n)
		model.Add(want, rd.f32(b, n))
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, n), want }
	}
}

func twinSiLUMul(out, gate, up Tensor, n int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := make([]float32, n)
		model.SiLUMul(want, rd.f32(gate, n), rd.f32(up, n))
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, n), want }
	}
}

func twinRMSNorm(out, x, weight Tensor, rows, dim int, eps float32) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := make([]float32, rows*dim)
		model.RMSNorm(want, rd.f32(x, rows*dim), rd.f32(weight, dim), float64(eps), rows, dim)
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, rows*dim), want }
	}
}

func twinLayerNorm(out, x, weight, bias Tensor, rows, dim int, eps float32) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := make([]float32, rows*dim)
		model.LayerNorm(want, rd.f32(x, rows*dim), rd.f32(weight, dim), rd.f32(bias, dim), float64(eps), rows, dim)
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, rows*dim), want }
	}
}

func twinRoPE(x, positions Tensor, rows, heads, headDim int) twin {
	n := rows * heads * headDim
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := rd.f32(x, n)
		model.RoPE(want, rows, heads, headDim, rd.ints(positions, rows), model.RoPEBase)
		return func(rd *reader) ([]float32, []float32) { return rd.f32(x, n), want }
	}
}

func twinGELU(x Tensor, n int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := rd.f32(x, n)
		model.GELU(want)
		return func(rd *reader) ([]float32, []float32) { return rd.f32(x, n), want }
	}
}

func twinEmbedding(out, ids Tensor, table func(rd *reader, id int) []float32, rows, dim int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := make([]float32, 0, rows*dim)
		for _, id := range rd.ints(ids, rows) {
			want = append(want, table(rd, id)...)
		}
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, rows*dim), want }
	}
}

func twinArgmax(result, logits Tensor, n int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		l := rd.f32(logits, n)
		best := 0
		for i, v := range l {
			if v > l[best] {
				best = i
			}
		}
		return func(rd *reader) ([]float32, []float32) {
			return []float32{float32(rd.u32(result, 1)[0])}, []float32{float32(best)}
		}
	}
}

// twinMatMul covers every encoding: deq returns the weight as float32 [n, k].
func twinMatMul(out, x, bias Tensor, hasBias bool, m, kdim, n int, deq func(rd *reader) []float32) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		var b []float32
		if hasBias {
			b = rd.f32(bias, n)
		}
		want := make([]float32, m*n)
		model.MatMul(want, rd.f32(x, m*kdim), deq(rd), b, m, kdim, n)
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, m*n), want }
	}
}

func deqF32(w Tensor, n, k int) func(*reader) []float32 {
	return func(rd *reader) []float32 { return rd.f32(w, n*k) }
}

func deqQ4(q, s Tensor, n, k, g int) func(*reader) []float32 {
	return func(rd *reader) []float32 { return quant.DequantizeQ4(rd.u32(q, n*k/8), rd.u16(s, n*k/g), n, k, g) }
}

func deqQ8(q, s Tensor, n, k, g int) func(*reader) []float32 {
	return func(rd *reader) []float32 { return quant.DequantizeQ8(rd.u32(q, n*k/4), rd.u16(s, n*k/g), n, k, g) }
}

func twinAttention(out, q Tensor, kv KVCache, state *StepState, qRows, heads, headDim int, causal bool) twin {
	width := heads * headDim
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		kvRows := int(rd.u32(state.tensor(), 1)[0])
		want := make([]float32, qRows*width)
		model.Attention(want, rd.f32(q, qRows*width), rd.kv(kv.K, kv.Precision, 0, kvRows*width), rd.kv(kv.V, kv.Precision, 0, kvRows*width),
			make([]float32, kvRows), qRows, kvRows, heads, headDim, causal)
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, qRows*width), want }
	}
}

// twinQKVRoPE checks q and the cache rows written (k rotated, v copied, rounded to f16
// for an f16 cache), concatenated.
func twinQKVRoPE(q Tensor, kv KVCache, qkv, positions Tensor, state *StepState, n, heads, headDim int) twin {
	width := heads * headDim
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		writeRow := int(rd.u32(state.tensor(), 2)[1])
		fused := rd.f32(qkv, n*3*width)
		pos := rd.ints(positions, n)
		wq, wk, wv := make([]float32, 0, n*width), make([]float32, 0, n*width), make([]float32, 0, n*width)
		for r := range n {
			row := fused[r*3*width:]
			wq, wk, wv = append(wq, row[:width]...), append(wk, row[width:2*width]...), append(wv, row[2*width:3*width]...)
		}
		model.RoPE(wq, n, heads, headDim, pos, model.RoPEBase)
		model.RoPE(wk, n, heads, headDim, pos, model.RoPEBase)
		if kv.Precision == KVF16 {
			roundF16(wk)
			roundF16(wv)
		}
		want := append(append(wq, wk...), wv...)
		return func(rd *reader) ([]float32, []float32) {
			got := rd.f32(q, n*width)
			got = append(got, rd.kv(kv.K, kv.Precision, writeRow*width, n*width)...)
			got = append(got, rd.kv(kv.V, kv.Precision, writeRow*width, n*width)...)
			return got, want
		}
	}
}

func twinCopy(dst, src Tensor, n int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := rd.f32(src, n)
		return func(rd *reader) ([]float32, []float32) { return rd.f32(dst, n), want }
	}
}

func twinVisionEmbed(out, cls, patches, pos Tensor, n, dim int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := append(rd.f32(cls, dim), rd.f32(patches, (n-1)*dim)...)
		model.Add(want, rd.f32(pos, n*dim))
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, n*dim), want }
	}
}

func twinSplitQKV(q, kt, v, qkv Tensor, n, width int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		fused := rd.f32(qkv, n*3*width)
		var wq, wk, wv []float32
		for r := range n {
			row := fused[r*3*width:]
			wq, wk, wv = append(wq, row[:width]...), append(wk, row[width:2*width]...), append(wv, row[2*width:3*width]...)
		}
		want := append(append(wq, wk...), wv...)
		return func(rd *reader) ([]float32, []float32) {
			return append(append(rd.f32(q, n*width), rd.f32(kt, n*width)...), rd.f32(v, n*width)...), want
		}
	}
}

func twinF16ToF32(dst, src Tensor, n int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := make([]float32, n)
		quant.DecodeF16(want, rd.u16(src, n))
		return func(rd *reader) ([]float32, []float32) { return rd.f32(dst, n), want }
	}
}

// deqQ4Row dequantizes one q4 row of dim values (dim/2 bytes, a multiple of 4) whose
// data and scales start at q and sc; the scales may start off a 4-byte boundary.
func deqQ4Row(rd *reader, q, sc Tensor, dim, group int) []float32 {
	words := rd.u32(q, dim/8)
	sOff := sc.Offset % 4
	sb := rd.bytes(Tensor{Buf: sc.Buf, Offset: sc.Offset - sOff}, int(sOff)+2*(dim/group))[sOff:]
	out := make([]float32, dim)
	for i := range out {
		s := quant.F16ToFloat32(binary.LittleEndian.Uint16(sb[2*(i/group):]))
		out[i] = float32(int32(words[i/8]>>(4*(i%8))&15)-8) * s
	}
	return out
}

// deqQ8Row dequantizes one q8 table row whose bytes start at q and scales at sc, reading
// whole 4-byte words around them (ReadBuffer ranges are 4-byte aligned).
func deqQ8Row(rd *reader, q, sc Tensor, dim, group int) []float32 {
	qOff, sOff := q.Offset%4, sc.Offset%4
	qb := rd.bytes(Tensor{Buf: q.Buf, Offset: q.Offset - qOff}, int(qOff)+dim)[qOff:]
	nScales := dim / group
	sb := rd.bytes(Tensor{Buf: sc.Buf, Offset: sc.Offset - sOff}, int(sOff)+2*nScales)[sOff:]
	out := make([]float32, dim)
	for i := range out {
		s := quant.F16ToFloat32(binary.LittleEndian.Uint16(sb[2*(i/group):]))
		out[i] = float32(int8(qb[i])) * s
	}
	return out
}
