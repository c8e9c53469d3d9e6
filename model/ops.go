package model

// The op list. Every block of the forward pass (vision.go, adapter.go, decoder.go) is
// written with these functions only, and wasm/kernels implements each of them as a
// kernel of the same name that is checked against the function here (with the shared
// arguments in the same order; wasm/kernels/ops_rule_test.go enforces both). They work
// on flat row-major float32 slices; sizes are passed explicitly, as a kernel's parameters
// would be. Arithmetic is
// float32 (as on the GPU); only transcendental functions and the row sums of the norms go
// through float64 (a sequential float32 sum of thousands of values loses digits that
// PyTorch's and the GPU's tree reductions keep).
//
// Callers pass slices of the right lengths: the ops index them directly and a short slice
// is a programming error (a panic), not a data error.

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// parallelFor calls fn(worker, item) for every item in [0, items), spread over up to
// GOMAXPROCS goroutines that pull items from a shared counter (so uneven items balance).
// worker is in [0, workers) and lets fn use per-worker scratch space.
func parallelFor(items, workers int, fn func(worker, item int)) {
	workers = min(workers, items)
	if workers <= 1 {
		for i := range items {
			fn(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= items {
					return
				}
				fn(w, i)
			}
		}()
	}
	wg.Wait()
}

// Tile sizes of MatMul's work items: a block of rows of x times a block of rows of W.
// 64 rows of a 4096-wide x are 1 MiB, so a tile's x rows stay in cache while the W rows
// stream past; 64 W rows make a decode (m = 1) of a 4096-wide layer 64 items, enough to
// balance any core count.
const (
	matMulRowBlock = 64
	matMulColBlock = 64
	// Below this many multiply-adds a MatMul runs on the calling goroutine: starting
	// goroutines costs more than the work.
	matMulSerialMACs = 1 << 16
)

// MatMul computes out[m,n] = x[m,k] · Wᵀ (+ bias), with w laid out [n,k] like a PyTorch
// Linear weight; bias has length n or is nil. out must not overlap x or w.
func MatMul(out, x, w, bias []float32, m, k, n int) {
	rowBlocks := (m + matMulRowBlock - 1) / matMulRowBlock
	colBlocks := (n + matMulColBlock - 1) / matMulColBlock
	workers := runtime.GOMAXPROCS(0)
	if m*n*k < matMulSerialMACs {
		workers = 1
	}
	parallelFor(rowBlocks*colBlocks, workers, func(_, item int) {
		i0 := (item / colBlocks) * matMulRowBlock
		j0 := (item % colBlocks) * matMulColBlock
		matMulTile(out, x, w, bias, k, n, i0, min(i0+matMulRowBlock, m), j0, min(j0+matMulColBlock, n), 0)
	})
}

// matMulTile computes out rows [i0,i1) × columns [j0,j1). Four rows of x share each load
// of a W element (and four W rows share each x element), which is what makes prefill
// compute-bound instead of load-bound; leftover rows and columns take the narrow paths.
// w holds the weight rows from wRow0 on (Matrix.MatMul passes a dequantized tile); every
// output is a sum over t in order whichever path computes it, so tiling never changes a
// result.
func matMulTile(out, x, w, bias []float32, k, n, i0, i1, j0, j1, wRow0 int) {
	i := i0
	for ; i+4 <= i1; i += 4 {
		x0, x1, x2, x3 := x[i*k:][:k], x[(i+1)*k:][:k], x[(i+2)*k:][:k], x[(i+3)*k:][:k]
		for j := j0; j < j1; j++ {
			wj := w[(j-wRow0)*k:][:k]
			var s0, s1, s2, s3 float32
			for t, wv := range wj {
				s0 += x0[t] * wv
				s1 += x1[t] * wv
				s2 += x2[t] * wv
				s3 += x3[t] * wv
			}
			if bias != nil {
				s0, s1, s2, s3 = s0+bias[j], s1+bias[j], s2+bias[j], s3+bias[j]
			}
			out[i*n+j], out[(i+1)*n+j], out[(i+2)*n+j], out[(i+3)*n+j] = s0, s1, s2, s3
		}
	}
	for ; i < i1; i++ {
		xi := x[i*k:][:k]
		j := j0
		for ; j+4 <= j1; j += 4 {
			w0, w1, w2, w3 := w[(j-wRow0)*k:][:k], w[(j+1-wRow0)*k:][:k], w[(j+2-wRow0)*k:][:k], w[(j+3-wRow0)*k:][:k]
			var s0, s1, s2, s3 float32
			for t, xv := range xi {
				s0 += xv * w0[t]
				s1 += xv * w1[t]
				s2 += xv * w2[t]
				s3 += xv * w3[t]
			}
			if bias != nil {
				s0, s1, s2, s3 = s0+bias[j], s1+bias[j+1], s2+bias[j+2], s3+bias[j+3]
			}
			out[i*n+j], out[i*n+j+1], out[i*n+j+2], out[i*n+j+3] = s0, s1, s2, s3
		}
		for ; j < j1; j++ {
			wj := w[(j-wRow0)*k:][:k]
			var s float32
			for t, xv := range xi {
				s += xv * wj[t]
			}
			if bias != nil {
				s += bias[j]
			}
			out[i*n+j] = s
		}
	}
}

// RMSNorm computes out = x / sqrt(mean(x²) + eps) * weight for each of rows rows of width
// dim (LLaMA's norm: no mean subtraction, no bias). out may be x.
func RMSNorm(out, x, weight []float32, rows, dim int, eps float64) {
	for r := range rows {
		xr, or := x[r*dim:][:dim], out[r*dim:][:dim]
		var ss float64
		for _, v := range xr {
			ss += float64(v) * float64(v)
		}
		scale := float32(1 / math.Sqrt(ss/float64(dim)+eps))
		for i, v := range xr {
			or[i] = v * scale * weight[i]
		}
	}
}

// LayerNorm computes out = (x − mean) / sqrt(var + eps) * weight + bias for each row, with
// the biased variance (as torch.nn.LayerNorm). out may be x.
func LayerNorm(out, x, weight, bias []float32, rows, dim int, eps float64) {
	for r := range rows {
		xr, or := x[r*dim:][:dim], out[r*dim:][:dim]
		var sum float64
		for _, v := range xr {
			sum += float64(v)
		}
		mean := float32(sum / float64(dim))
		// Two passes: E[(x−mean)²] does not cancel catastrophically like E[x²]−mean².
		var ss float64
		for _, v := range xr {
			d := float64(v - mean)
			ss += d * d
		}
		scale := float32(1 / math.Sqrt(ss/float64(dim)+eps))
		for i, v := range xr {
			or[i] = (v-mean)*scale*weight[i] + bias[i]
		}
	}
}

// RoPE rotates x in place: rows rows of heads heads of headDim values, row r at rotary
// position positions[r]. It uses the rotate-half convention of LLaMA/CogVLM: value i of a
// head pairs with value i + headDim/2 (not with its neighbour), and the pair's angle is
// position × base^(−2i/headDim).
//
// The frequency and the angle are rounded to float32 before cos/sin, as PyTorch computes
// them, so that large positions land on the same angles as the original code.
func RoPE(x []float32, rows, heads, headDim int, positions []int, base float64) {
	half := headDim / 2
	for r := range rows {
		for i := range half {
			cos, sin := RoPECosSin(positions[r], i, headDim, base)
			for h := range heads {
				head := x[(r*heads+h)*headDim:][:headDim]
				a, b := head[i], head[i+half]
				head[i] = a*cos - b*sin
				head[i+half] = b*cos + a*sin
			}
		}
	}
}

// RoPECosSin is the rotation of pair i of a head at position pos: the frequency and the
// angle rounded to float32 as PyTorch computes them, cos and sin in float64. The GPU's
// cos/sin table is made from it too, so both rotate by the same coefficients.
func RoPECosSin(pos, i, headDim int, base float64) (cos, sin float32) {
	invFreq := float32(1 / math.Pow(base, float64(2*i)/float64(headDim)))
	angle := float64(float32(pos) * invFreq)
	return float32(math.Cos(angle)), float32(math.Sin(angle))
}

// AttentionScratchLen is the length of the scores scratch Attention needs for kvRows keys
// to use every core.
func AttentionScratchLen(kvRows int) int { return runtime.GOMAXPROCS(0) * kvRows }

// Attention computes softmax(q·kᵀ / √headDim) · v per head. q and out are [qRows, heads,
// headDim]; k and v are [kvRows, heads, headDim]. The query rows are the last qRows of the
// kvRows positions (kvRows ≥ qRows: with a KV cache, earlier keys come first), so with
// causal set, query row i sees keys 0 … kvRows−qRows+i. Without it every query sees every
// key (the vision tower). scores is scratch of at least kvRows values; a multiple of
// kvRows lets that many workers run at once (see AttentionScratchLen).
func Attention(out, q, k, v, scores []float32, qRows, kvRows, heads, headDim int, causal bool) {
	width := heads * headDim
	scale := float32(1 / math.Sqrt(float64(headDim)))
	workers := len(scores) / kvRows
	if qRows*kvRows*width < matMulSerialMACs {
		workers = 1
	}
	parallelFor(qRows*heads, workers, func(worker, item int) {
		i, h := item/heads, item%heads
		seen := kvRows
		if causal {
			seen = kvRows - qRows + i + 1
		}
		qi := q[i*width+h*headDim:][:headDim]
		s := scores[worker*kvRows:][:seen]
		for j := range s {
			kj := k[j*width+h*headDim:][:headDim]
			var dot float32
			for t, qv := range qi {
				dot += qv * kj[t]
			}
			s[j] = dot * scale
		}
		Softmax(s)
		oi := out[i*width+h*headDim:][:headDim]
		clear(oi)
		for j, p := range s {
			vj := v[j*width+h*headDim:][:headDim]
			for t, vv := range vj {
				oi[t] += p * vv
			}
		}
	})
}

// Softmax normalises x in place to exp(x − max) / Σ exp(x − max). Subtracting the maximum
// keeps exp in range; the result is the same as without it.
func Softmax(x []float32) {
	maxv := float32(math.Inf(-1))
	for _, v := range x {
		maxv = max(maxv, v)
	}
	var sum float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - maxv)))
		x[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range x {
		x[i] *= inv
	}
}

// GELU applies the exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2)), in place. EVA2-CLIP and the
// adapter use nn.GELU's default (erf), not the tanh approximation.
func GELU(x []float32) {
	for i, v := range x {
		x[i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
	}
}

// SiLUMul computes out = silu(gate) * up, silu(g) = g / (1 + e^−g): the SwiGLU of the
// language MLP and of the adapter. out may be gate or up.
func SiLUMul(out, gate, up []float32) {
	for i, g := range gate {
		out[i] = g / (1 + float32(math.Exp(float64(-g)))) * up[i]
	}
}

// Add computes out = a + b element-wise (the residual connections); out may be a or b.
func Add(out, a, b []float32) {
	for i, v := range b {
		out[i] = a[i] + v
	}
}

// Copy copies src to dst (the image rows into the prompt, cls, boi and eoi): the op
// list's name for the builtin, which the GPU runs as a kernel of its own.
func Copy(dst, src []float32) { copy(dst, src) }

// Embedding copies row ids[r] of table [vocab, dim] to row r of out [len(ids), dim].
func Embedding(out []float32, ids []int, table []float32, dim int) {
	for r, id := range ids {
		copy(out[r*dim:][:dim], table[id*dim:][:dim])
	}
}

// EmbeddingQ4 is Embedding on a q4 table (qweight [vocab·dim/8], f16 scales
// [vocab·dim/group]): each row dequantized as it is gathered.
func EmbeddingQ4(out []float32, ids []int, qweight []uint32, scales []uint16, dim, group int) {
	for r, id := range ids {
		quant.DequantizeQ4Rows(out[r*dim:][:dim], qweight[id*dim/8:][:dim/8], scales[id*dim/group:][:dim/group], 1, dim, group)
	}
}

// EmbeddingQ8 is Embedding on a q8 table (qweight [vocab·dim/4], f16 scales
// [vocab·dim/group]).
func EmbeddingQ8(out []float32, ids []int, qweight []uint32, scales []uint16, dim, group int) {
	for r, id := range ids {
		quant.DequantizeQ8Rows(out[r*dim:][:dim], qweight[id*dim/4:][:dim/4], scales[id*dim/group:][:dim/group], 1, dim, group)
	}
}

// F16ToF32 expands IEEE halves to float32 (exactly): the f16 tensors of a q4 package
// (the patch-embedding conv, the position embeddings).
func F16ToF32(dst []float32, src []uint16) { quant.DecodeF16(dst, src) }

// Argmax returns the index of the largest logit, the lowest on ties: greedy decoding.
func Argmax(logits []float32) int {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return best
}

// Sample draws a token from logits with the settings s and the draw u in [0, 1): one
// step of a Sampler without a repetition penalty (the GPU sampler's twin).
func Sample(logits []float32, s Sampling, u float64) (int, error) {
	sp, err := NewSampler(s, len(logits))
	if err != nil {
		return 0, err
	}
	return sp.SampleWith(logits, nil, u), nil
}

// SplitQKV splits a fused projection qkv [rows, 3, width] (each row q, then k, then v)
// into q, k and v [rows, width].
func SplitQKV(q, k, v, qkv []float32, rows, width int) {
	for r := range rows {
		row := qkv[r*3*width:][:3*width]
		copy(q[r*width:][:width], row[:width])
		copy(k[r*width:][:width], row[width:2*width])
		copy(v[r*width:][:width], row[2*width:])
	}
}

// QKVRoPE splits a fused projection qkv [rows, 3, heads, headDim] into q, k and v
// [rows, heads, headDim] and rotates q and k at the rows' positions (RoPE).
func QKVRoPE(q, k, v, qkv []float32, positions []int, rows, heads, headDim int, base float64) {
	SplitQKV(q, k, v, qkv, rows, heads*headDim)
	RoPE(q, rows, heads, headDim, positions, base)
	RoPE(k, rows, heads, headDim, positions, base)
}

// VisionEmbed assembles the vision tower's input rows [rows, dim]: the cls embedding,
// then the rows−1 patch rows, plus the position embeddings pos [rows, dim]. patches may
// be out's rows 1 … rows−1 themselves (the CPU reference embeds the patches in place).
func VisionEmbed(out, cls, patches, pos []float32, rows, dim int) {
	copy(out[dim:rows*dim], patches[:(rows-1)*dim]) // a no-op when patches is out[dim:]
	copy(out[:dim], cls)
	Add(out[:rows*dim], out[:rows*dim], pos)
}
