//go:build js && wasm

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// uploadAt uploads v after `at` floats of filler, as a tensor that starts at float `at`:
// the row ranges of a model whose rows are not multiples of the 256-byte storage offset
// alignment (bindFrom binds from the aligned offset below and passes the rest).
func uploadAt(t *testing.T, k *Kernels, label string, v []float32, at int, r *rand.Rand) Tensor {
	t.Helper()
	whole := upload(t, k, label, append(randn(r, at, 100), v...))
	return Tensor{Buf: whole.Buf, Offset: uint64(4 * at), Size: uint64(4 * len(v))}
}

// sentinel is what outputAt fills around the window: a kernel writing outside it shows.
const sentinel = float32(-12345)

// outputAt is a window of n floats at float `at` of a buffer of at+n+at floats, the rest
// holding sentinel.
func outputAt(t *testing.T, k *Kernels, n, at int) Tensor {
	t.Helper()
	fill := make([]float32, at+n+at)
	for i := range fill {
		fill[i] = sentinel
	}
	whole := upload(t, k, "out", fill)
	return Tensor{Buf: whole.Buf, Offset: uint64(4 * at), Size: uint64(4 * n)}
}

// readAround reads the window of outputAt and checks that nothing around it was written.
func readAround(t *testing.T, k *Kernels, out Tensor, n int, steps ...Step) []float32 {
	t.Helper()
	at := int(out.Offset / 4)
	all := run(t, k, Whole(out.Buf), at+n+at, steps...)
	for i, v := range all {
		if (i < at || i >= at+n) && v != sentinel {
			t.Fatalf("float %d outside the output window [%d, %d) was written: %v", i, at, at+n, v)
		}
	}
	return all[at : at+n]
}

// TestLinearAtOffsets: every matmul kernel reads x and writes out at row ranges that start
// anywhere (an expert's rows, the image rows), with the awkward sizes of small configs: K
// not a multiple of 4 (f32), of 16 (q8 decode), q4 groups under 32.
func TestLinearAtOffsets(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(9, 1))
	defer func(old PrefillQ4) { k.PrefillQ4 = old }(k.PrefillQ4)
	for _, sh := range []struct {
		enc           quant.Encoding
		m, k, n, g    int
		xAt, outAt    int // floats before x and out: row offsets of a [*, k] and a [*, n] tensor
		prefill       PrefillQ4
		noSubgroups   bool
		wantKernelHas string
	}{
		{quant.F32, 1, 60, 20, 0, 60 * 3, 20, PrefillAuto, false, "matvec"},
		{quant.F32, 2, 54, 37, 0, 54 * 5, 37 * 3, PrefillAuto, false, "matmul"}, // K % 4 = 2: the tiled kernel
		{quant.F32, 7, 18, 9, 0, 18, 9 * 7, PrefillAuto, false, "matmul"},
		{quant.Q4, 1, 72, 40, 24, 72 * 3, 40 * 5, PrefillAuto, false, "matvec_q4"}, // groups of 24
		{quant.Q4, 1, 96, 33, 32, 96, 33 * 2, PrefillAuto, false, "matvec_q4"},     // subgroups where there are
		{quant.Q4, 1, 96, 33, 32, 96, 33 * 2, PrefillAuto, true, "matvec_q4"},
		{quant.Q4, 6, 104, 33, 8, 104, 33 * 2, PrefillRows, false, "rows"},
		{quant.Q4, 6, 144, 70, 16, 144 * 3, 70, PrefillTiled, false, "matmul_q4"},
		{quant.Q8, 1, 72, 40, 24, 72 * 3, 40 * 5, PrefillAuto, false, "rows"}, // K % 16 ≠ 0: the rows kernel decodes
		{quant.Q8, 2, 112, 50, 16, 112 * 7, 50, PrefillAuto, false, "matvec_q8"},
		{quant.Q8, 2, 112, 50, 16, 112 * 7, 50, PrefillAuto, true, "matvec_q8"},
		{quant.Q8, 9, 60, 20, 12, 60, 20 * 3, PrefillAuto, false, "rows"},
	} {
		name := fmt.Sprintf("%s m=%d k=%d n=%d g=%d x at %d, out at %d", sh.enc, sh.m, sh.k, sh.n, sh.g, sh.xAt, sh.outAt)
		k.PrefillQ4, k.NoSubgroups = sh.prefill, sh.noSubgroups
		x, w, bias := randn(r, sh.m*sh.k, 1), randn(r, sh.n*sh.k, 0.1), randn(r, sh.n, 0.1)
		xt, out, bt := uploadAt(t, k, "x", x, sh.xAt, r), outputAt(t, k, sh.m*sh.n, sh.outAt), upload(t, k, "bias", bias)
		want := make([]float32, sh.m*sh.n)
		var step Step
		var err error
		var deqF16 []float32 // the weights where an f16 kernel runs
		switch sh.enc {
		case quant.F32:
			model.MatMul(want, x, w, bias, sh.m, sh.k, sh.n)
			step, err = k.MatMul(out, xt, upload(t, k, "w", w), bt, sh.m, sh.k, sh.n)
		case quant.Q4:
			q, s, qerr := quant.QuantizeQ4(w, sh.n, sh.k, sh.g)
			if qerr != nil {
				t.Fatal(qerr)
			}
			quant.MatMulQ4(want, x, q, s, bias, sh.m, sh.k, sh.n, sh.g)
			if k.q4F16(sh.m, sh.k, sh.g) { // the f16 kernels meet their twin instead
				deqF16 = quant.DequantizeQ4(q, s, sh.n, sh.k, sh.g)
			}
			step, err = k.MatMulQ4(out, xt, uploadU32(t, k, "q", q), uploadBytes(t, k, "s", u16Bytes(s)), bt, sh.m, sh.k, sh.n, sh.g)
		case quant.Q8:
			q, s, qerr := quant.QuantizeQ8(w, sh.n, sh.k, sh.g)
			if qerr != nil {
				t.Fatal(qerr)
			}
			quant.MatMulQ8(want, x, q, s, bias, sh.m, sh.k, sh.n, sh.g)
			step, err = k.MatMulQ8(out, xt, uploadU32(t, k, "q", q), uploadBytes(t, k, "s", u16Bytes(s)), bt, sh.m, sh.k, sh.n, sh.g)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(step.Label, sh.wantKernelHas) {
			t.Errorf("%s: kernel %q, want one named like %q", name, step.Label, sh.wantKernelHas)
		}
		got := readAround(t, k, out, sh.m*sh.n, step)
		if deqF16 != nil {
			closeF16(t, name+" ("+step.Label+")", got, x, deqF16, bias, sh.m, sh.k, sh.n)
			continue
		}
		closeTo(t, name+" ("+step.Label+")", got, want, 1e-4, 1e-4)
	}
	// x read as vec4s must start at a whole vec4
	k.PrefillQ4 = PrefillAuto
	q, s, _ := quant.QuantizeQ4(randn(r, 8*8, 1), 8, 8, 8)
	xt := uploadAt(t, k, "x", randn(r, 8, 1), 2, r)
	_, err := k.MatMulQ4(output(t, k, "out", 8), xt, uploadU32(t, k, "q", q), uploadBytes(t, k, "s", u16Bytes(s)), Tensor{}, 1, 8, 8, 8)
	if err == nil || !strings.Contains(err.Error(), "not a multiple of 16") {
		t.Errorf("x at byte 8: error %v, want one about the vec4 start", err)
	}
}

// TestRMSNormAtOffsets: the decoder's final norm reads the last prompt row, which starts
// anywhere.
func TestRMSNormAtOffsets(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(9, 2))
	for _, sh := range []struct{ rows, dim, xAt, outAt int }{{1, 54, 54 * 6, 0}, {2, 72, 72, 5}, {3, 12, 12 * 13, 12 * 2}} {
		x, w := randn(r, sh.rows*sh.dim, 2), randn(r, sh.dim, 1)
		out := outputAt(t, k, sh.rows*sh.dim, sh.outAt)
		got := readAround(t, k, out, sh.rows*sh.dim, must(t)(k.RMSNorm(out, uploadAt(t, k, "x", x, sh.xAt, r), upload(t, k, "w", w), sh.rows, sh.dim, 1e-5)))
		want := make([]float32, sh.rows*sh.dim)
		model.RMSNorm(want, x, w, 1e-5, sh.rows, sh.dim)
		closeTo(t, fmt.Sprintf("rmsnorm %d×%d at %d", sh.rows, sh.dim, sh.xAt), got, want, 1e-5, 1e-5)
	}
}

// TestQKVRoPE: split, rotation and cache write of the fused q/k/v for every even head_dim,
// ≡ 2 (mod 4) (ODD_HALF) included, into either cache precision at a write row past 0.
func TestQKVRoPE(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(9, 3))
	const maxPos, writeRow = 64, 3
	for _, kv := range []KVPrecision{KVF32, KVF16} {
		for _, sh := range []struct{ rows, heads, headDim int }{{5, 4, 16}, {3, 3, 18}, {1, 5, 6}, {4, 1, 2}, {2, 4, 26}} {
			width := sh.heads * sh.headDim
			qkv := randn(r, sh.rows*3*width, 1)
			pos := make([]int, sh.rows)
			posU := make([]uint32, sh.rows)
			for i := range pos {
				pos[i] = r.IntN(maxPos)
				posU[i] = uint32(pos[i])
			}
			cacheRows := writeRow + sh.rows + 1
			kc := Whole(output(t, k, "k cache", (cacheRows*width*kv.BytesPerValue()+3)/4).Buf)
			vc := Whole(output(t, k, "v cache", (cacheRows*width*kv.BytesPerValue()+3)/4).Buf)
			state, err := k.NewStepState("step")
			if err != nil {
				t.Fatal(err)
			}
			if err := state.Set(k.Dev, writeRow+sh.rows, writeRow); err != nil {
				t.Fatal(err)
			}
			q := output(t, k, "q", sh.rows*width)
			cache := KVCache{K: kc, V: vc, Precision: kv}
			step := must(t)(k.QKVRoPE(q, cache, upload(t, k, "qkv", qkv), uploadU32(t, k, "pos", posU),
				upload(t, k, "table", RoPETable(maxPos, sh.headDim, model.RoPEBase)), state, sh.rows, sh.heads, sh.headDim))
			gotQ := run(t, k, q, sh.rows*width, step)
			wq, wk, wv := make([]float32, 0, sh.rows*width), make([]float32, 0, sh.rows*width), make([]float32, 0, sh.rows*width)
			for i := range sh.rows {
				row := qkv[i*3*width:]
				wq, wk, wv = append(wq, row[:width]...), append(wk, row[width:2*width]...), append(wv, row[2*width:3*width]...)
			}
			model.RoPE(wq, sh.rows, sh.heads, sh.headDim, pos, model.RoPEBase)
			model.RoPE(wk, sh.rows, sh.heads, sh.headDim, pos, model.RoPEBase)
			name := fmt.Sprintf("qkv rope kv %s, %d rows × %d heads × %d", kv, sh.rows, sh.heads, sh.headDim)
			closeTo(t, name+": q", gotQ, wq, 1e-5, 1e-5)
			rd := &reader{k: k}
			tol := 1e-5
			if kv == KVF16 {
				tol = 1e-3
			}
			closeTo(t, name+": k", rd.kv(kc, kv, writeRow*width, sh.rows*width), wk, tol, tol)
			closeTo(t, name+": v", rd.kv(vc, kv, writeRow*width, sh.rows*width), wv, tol, tol)
			if rd.err != nil {
				t.Fatal(rd.err)
			}
			// the rows before the write row stay untouched (zero)
			for i, v := range rd.kv(kc, kv, 0, writeRow*width) {
				if v != 0 || math.Signbit(float64(v)) {
					t.Fatalf("%s: k cache element %d before the write row = %v", name, i, v)
				}
			}
		}
	}
	if _, err := k.QKVRoPE(Tensor{}, KVCache{}, Tensor{}, Tensor{}, Tensor{}, nil, 1, 1, 7); err == nil {
		t.Error("qkv rope accepted head_dim 7")
	}
}
