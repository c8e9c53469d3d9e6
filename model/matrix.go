package model

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// Matrix is a weight matrix [N, K]: a Linear layer's weight (y = x·Wᵀ, rows are outputs),
// the token embedding or lm_head, held in the encoding it is stored in. A checkpoint's
// weights are float32; a package's stay f16, q4 or q8 as stored (model/format/FORMAT.md), so
// the CPU reference of a q4 package needs about the package's bytes, not the float32
// model's (70 GB for CogVLM-17B). MatMul and Embed dequantize a few rows at a time into
// scratch space; the dequantized values are exact in float32, so a packed matrix gives
// bit for bit what its float32 expansion gives.
//
// A Matrix from a package may point into a read-only memory-mapped file: its slices must
// not be written.
type Matrix struct {
	N, K     int
	Encoding quant.Encoding // quant.F32, quant.F16, quant.Q4 or quant.Q8
	F32      []float32      // F32: the values, [N·K]
	F16      []uint16       // F16: IEEE halves, [N·K]
	Words    []uint32       // Q4: [N·K/8], Q8: [N·K/4], packed as FORMAT.md says
	Scales   []uint16       // Q4, Q8: f16 scales, [N·K/GroupSize]
	// GroupSize is the number of consecutive inputs of a row that share a scale (Q4, Q8).
	GroupSize int
	// Owner keeps alive the memory the slices point into when the garbage collector does
	// not know it (a package's mapped shard, unmapped when no Matrix holds it); nil for
	// slices of Go memory.
	Owner any
}

// F32Matrix is the float32 matrix [n, k] with values w (len n·k), not copied.
func F32Matrix(n, k int, w []float32) Matrix {
	return Matrix{N: n, K: k, Encoding: quant.F32, F32: w}
}

// Rows is the matrix of rows [r0, r1), sharing memory with w: rows of every encoding are
// contiguous, so a fused weight (query_key_value's [q; k; v]) splits without a copy.
func (w Matrix) Rows(r0, r1 int) Matrix {
	k := w.K
	out := w
	out.N = r1 - r0
	switch w.Encoding {
	case quant.F32:
		out.F32 = w.F32[r0*k : r1*k]
	case quant.F16:
		out.F16 = w.F16[r0*k : r1*k]
	case quant.Q4, quant.Q8:
		per := w.Encoding.PerWord()
		out.Words = w.Words[r0*k/per : r1*k/per]
		out.Scales = w.Scales[r0*k/w.GroupSize : r1*k/w.GroupSize]
	}
	return out
}

// Check reports whether w is a well-formed [n, k] matrix: a known encoding, slices of the
// lengths the encoding implies, a valid group size. A MatrixSource's matrices are checked
// with it before use, so the arithmetic can index without bounds worries.
func (w Matrix) Check(n, k int) error {
	if w.N != n || w.K != k {
		return fmt.Errorf("matrix is [%d, %d], want [%d, %d]", w.N, w.K, n, k)
	}
	length := func(what string, got, want int) error {
		if got != want {
			return fmt.Errorf("%s matrix [%d, %d]: %s has %d elements, want %d", w.Encoding, n, k, what, got, want)
		}
		return nil
	}
	switch w.Encoding {
	case quant.F32:
		return length("data", len(w.F32), n*k)
	case quant.F16:
		return length("data", len(w.F16), n*k)
	case quant.Q4, quant.Q8:
		if err := quant.CheckGroups(w.Encoding, n, k, w.GroupSize); err != nil {
			return err
		}
		if err := length("qweight", len(w.Words), n*k/w.Encoding.PerWord()); err != nil {
			return err
		}
		return length("scales", len(w.Scales), n*k/w.GroupSize)
	}
	return fmt.Errorf("unknown matrix encoding %q", w.Encoding)
}

// CheckFinite returns an error naming the first value of w that is NaN or infinite: for
// q4 and q8 the scales (the levels are integers), for f16 and f32 the values. A weight
// like that turns every activation it touches into NaN, and generation then repeats one
// token forever without any other sign.
func (w Matrix) CheckFinite() error {
	switch w.Encoding {
	case quant.F32:
		return checkFinite(w.F32)
	case quant.F16:
		if i := firstNonFiniteF16(w.F16); i >= 0 {
			return fmt.Errorf("element %d is %g: weights must be finite", i, quant.F16ToFloat32(w.F16[i]))
		}
	case quant.Q4, quant.Q8:
		if i := firstNonFiniteF16(w.Scales); i >= 0 {
			groups := w.K / w.GroupSize
			return fmt.Errorf("the scale of row %d, inputs %d…%d is %g: weights must be finite",
				i/groups, i%groups*w.GroupSize, (i%groups+1)*w.GroupSize-1, quant.F16ToFloat32(w.Scales[i]))
		}
	}
	return nil
}

// checkFinite returns an error naming the first NaN or infinite value of v.
func checkFinite(v []float32) error {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("element %d is %g: weights must be finite", i, x)
		}
	}
	return nil
}

// firstNonFiniteF16 is the index of the first IEEE half of v that is NaN or infinite (all
// exponent bits set), or −1.
func firstNonFiniteF16(v []uint16) int {
	for i, h := range v {
		if h&0x7c00 == 0x7c00 {
			return i
		}
	}
	return -1
}

// dequantize writes rows [r0, r1) of w into dst [(r1−r0)·K] as float32.
func (w Matrix) dequantize(dst []float32, r0, r1 int) {
	k := w.K
	switch w.Encoding {
	case quant.F32:
		copy(dst, w.F32[r0*k:r1*k])
	case quant.F16:
		quant.DecodeF16(dst, w.F16[r0*k:r1*k])
	case quant.Q4:
		quant.DequantizeQ4Rows(dst, w.Words[r0*k/8:r1*k/8], w.Scales[r0*k/w.GroupSize:r1*k/w.GroupSize], r1-r0, k, w.GroupSize)
	case quant.Q8:
		quant.DequantizeQ8Rows(dst, w.Words[r0*k/4:r1*k/4], w.Scales[r0*k/w.GroupSize:r1*k/w.GroupSize], r1-r0, k, w.GroupSize)
	default:
		panic(fmt.Sprintf("model: matrix encoding %q", w.Encoding))
	}
}

// Embed copies row ids[r] of w (the token embedding [V, H]) to row r of out
// [len(ids), K], dequantizing a packed row: Embedding on the stored form.
func (w Matrix) Embed(out []float32, ids []int) {
	if w.Encoding == quant.F32 {
		Embedding(out, w.F32, ids, w.K)
		return
	}
	for r, id := range ids {
		w.dequantize(out[r*w.K:][:w.K], id, id+1)
	}
	runtime.KeepAlive(w.Owner)
}

// packedTileBytes bounds the float32 rows of a packed matrix that one MatMul worker
// dequantizes at a time: they stay in a core's L2 cache while every row of x passes them.
const packedTileBytes = 256 << 10

// tilePool holds the workers' dequantization scratch between MatMul calls, so a decode
// step allocates nothing.
var tilePool sync.Pool

// MatMul computes out[m, N] = x[m, K] · Wᵀ (+ bias): the op MatMul on the stored form,
// with the same result bit for bit. A float32 matrix runs MatMul itself. A packed one is
// cut into tiles of a few rows (at most packedTileBytes as float32), spread over
// GOMAXPROCS workers; each worker dequantizes its tile once into its scratch and runs
// every row block of x past it with MatMul's tile kernel, whose sums run in the same
// order as MatMul's, so the float32 result is identical. A decode-shaped call (fewer than
// four rows of x) of a q4 or q8 matrix skips the tile: it dequantizes one group of four
// weight rows at a time and adds it into the sums at once (dot4), in the same order.
func (w Matrix) MatMul(out, x, bias []float32, m int) {
	n, k := w.N, w.K
	if w.Encoding == quant.F32 {
		MatMul(out, x, w.F32, bias, m, k, n)
		return
	}
	rows := min(max(packedTileBytes/4/k&^3, 4), matMulColBlock)
	tiles := (n + rows - 1) / rows
	workers := min(runtime.GOMAXPROCS(0), tiles)
	if m*n*k < matMulSerialMACs {
		workers = 1
	}
	if m < 4 && w.Encoding.Quantized() {
		// a decode step: each weight is used once per row of x, so a fused
		// dequantize-and-dot saves writing the tile and reading it back
		parallelFor(tiles, workers, func(_, item int) {
			j, j1 := item*rows, min((item+1)*rows, n)
			for ; j < j1; j += 4 { // rows is a multiple of 4; the last tile may end short
				var s [4]float32
				for i := range m {
					if j+4 <= j1 {
						s = w.dot4(x[i*k:][:k], j)
					} else {
						for r := range j1 - j {
							s[r] = w.dot(x[i*k:][:k], j+r)
						}
					}
					for r := range min(4, j1-j) {
						if bias != nil {
							s[r] += bias[j+r]
						}
						out[i*n+j+r] = s[r]
					}
				}
			}
		})
		runtime.KeepAlive(w.Owner)
		return
	}
	scratch := make([]*[]float32, workers)
	parallelFor(tiles, workers, func(worker, item int) {
		buf := scratch[worker]
		if buf == nil {
			buf, _ = tilePool.Get().(*[]float32)
			if buf == nil || cap(*buf) < rows*k {
				buf = new(make([]float32, rows*k))
			}
			scratch[worker] = buf
		}
		j0 := item * rows
		j1 := min(j0+rows, n)
		tile := (*buf)[:(j1-j0)*k]
		w.dequantize(tile, j0, j1)
		for i0 := 0; i0 < m; i0 += matMulRowBlock {
			matMulTile(out, x, tile, bias, k, n, i0, min(i0+matMulRowBlock, m), j0, j1, j0)
		}
	})
	for _, buf := range scratch {
		if buf != nil {
			tilePool.Put(buf)
		}
	}
	runtime.KeepAlive(w.Owner)
}

// dot is Σ x[t]·W[j][t] over t in order for a q4 or q8 matrix: the sum MatMul forms on
// the dequantized row, bit for bit (each weight (q − 8)·scale or q·scale is exact in
// float32).
func (w Matrix) dot(x []float32, j int) float32 {
	var s float32
	var row [quant.DefaultGroupSize * 4]float32
	g := w.GroupSize
	buf := row[:]
	if g > len(buf) {
		buf = make([]float32, g)
	}
	for c := 0; c < w.K; c += g {
		group := buf[:g]
		w.dequantizeGroup(group, j, c)
		for t, v := range group {
			s += x[c+t] * v
		}
	}
	return s
}

// dot4 is dot for rows j … j+3 at once: four independent sums hide the latency of the
// additions, as MatMul's narrow path does.
func (w Matrix) dot4(x []float32, j int) [4]float32 {
	var s0, s1, s2, s3 float32
	g := w.GroupSize
	var rows [4 * quant.DefaultGroupSize]float32
	buf := rows[:]
	if 4*g > len(buf) {
		buf = make([]float32, 4*g)
	}
	w0, w1, w2, w3 := buf[:g], buf[g:2*g], buf[2*g:3*g], buf[3*g:4*g]
	for c := 0; c < w.K; c += g {
		w.dequantizeGroup(w0, j, c)
		w.dequantizeGroup(w1, j+1, c)
		w.dequantizeGroup(w2, j+2, c)
		w.dequantizeGroup(w3, j+3, c)
		xg := x[c:][:g]
		for t, xv := range xg {
			s0 += xv * w0[t]
			s1 += xv * w1[t]
			s2 += xv * w2[t]
			s3 += xv * w3[t]
		}
	}
	return [4]float32{s0, s1, s2, s3}
}

// dequantizeGroup writes the group of row j starting at input c (a multiple of the group
// size) into dst [GroupSize].
func (w Matrix) dequantizeGroup(dst []float32, j, c int) {
	k, g := w.K, w.GroupSize
	d := quant.F16ToFloat32(w.Scales[(j*k+c)/g])
	if w.Encoding == quant.Q4 {
		// the group's 16 levels once, then a table look-up per weight: the same products
		var levels [16]float32
		for q := range levels {
			levels[q] = float32(q-8) * d
		}
		words := w.Words[(j*k+c)/8:][:g/8]
		for wi, word := range words {
			v := dst[wi*8:][:8]
			v[0], v[1] = levels[word&0xf], levels[word>>4&0xf]
			v[2], v[3] = levels[word>>8&0xf], levels[word>>12&0xf]
			v[4], v[5] = levels[word>>16&0xf], levels[word>>20&0xf]
			v[6], v[7] = levels[word>>24&0xf], levels[word>>28]
		}
		return
	}
	words := w.Words[(j*k+c)/4:][:g/4]
	for wi, word := range words {
		v := dst[wi*4:][:4]
		for i := range v {
			v[i] = float32(int8(word>>(8*i))) * d
		}
	}
}
