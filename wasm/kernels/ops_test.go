//go:build js && wasm

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels/kernelstest"
)

var sharedKernels *Kernels

// kernels is the test binary's one kernel cache, on kernelstest's device.
func kernels(t *testing.T) *Kernels {
	t.Helper()
	if sharedKernels == nil {
		sharedKernels = NewKernels(kernelstest.Device(t))
		sharedKernels.NoF16 = *kernelstest.NoF16
		// the replayer the page's worker hands the engine: plans run as in the app
		if err := kernelstest.Supply(sharedKernels); err != nil {
			t.Fatal(err)
		}
	}
	return sharedKernels
}

func randn(r *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64()) * scale
	}
	return v
}

// upload makes a storage buffer holding v.
func upload(t *testing.T, k *Kernels, label string, v []float32) Tensor {
	t.Helper()
	b, err := k.Dev.CreateBuffer(label, uint64(4*len(v)), gpu.UsageStorage|gpu.UsageCopyDst|gpu.UsageCopySrc)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Dev.WriteBuffer(b, 0, gpu.Float32Bytes(v)); err != nil {
		t.Fatal(err)
	}
	return Whole(b)
}

func uploadU32(t *testing.T, k *Kernels, label string, v []uint32) Tensor {
	t.Helper()
	b, err := k.Dev.CreateBuffer(label, uint64(4*len(v)), gpu.UsageStorage|gpu.UsageCopyDst)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Dev.WriteBuffer(b, 0, gpu.Uint32Bytes(v)); err != nil {
		t.Fatal(err)
	}
	return Whole(b)
}

func output(t *testing.T, k *Kernels, label string, n int) Tensor {
	t.Helper()
	b, err := k.Dev.CreateBuffer(label, uint64(4*n), gpu.UsageStorage|gpu.UsageCopySrc)
	if err != nil {
		t.Fatal(err)
	}
	return Whole(b)
}

// run executes the steps as one plan and reads back n floats of out.
func run(t *testing.T, k *Kernels, out Tensor, n int, steps ...Step) []float32 {
	t.Helper()
	p := &Plan{}
	p.Add(steps...)
	if err := k.Run(p); err != nil {
		t.Fatal(err)
	}
	raw, err := k.Dev.ReadBuffer(out.Buf, out.Offset, uint64(4*n))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Dev.Sync(); err != nil {
		t.Fatal(err)
	}
	return gpu.BytesFloat32(raw)
}

// must(t)(k.Op(...)) fails the test on an op error.
func must(t *testing.T) func(Step, error) Step {
	return func(s Step, err error) Step {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// closeTo checks |got − want| ≤ atol + rtol·|want| everywhere.
func closeTo(t *testing.T, what string, got, want []float32, atol, rtol float64) {
	t.Helper()
	worst, at := 0.0, -1
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if excess := d - (atol + rtol*math.Abs(float64(want[i]))); excess > 0 && excess > worst {
			worst, at = excess, i
		}
	}
	if at >= 0 {
		t.Errorf("%s: [%d] = %v, want %v (beyond tolerance by %g)", what, at, got[at], want[at], worst)
	}
}

func TestAdd(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{1, 255, 4097, 2_000_001} {
		a, b := randn(r, n, 1), randn(r, n, 1)
		out := output(t, k, "out", n)
		got := run(t, k, out, n, must(t)(k.Add(out, upload(t, k, "a", a), upload(t, k, "b", b), n)))
		want := append([]float32(nil), a...)
		model.Add(want, want, b)
		closeTo(t, "add", got, want, 0, 0)
	}
}

func TestSiLUMul(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{3, 11008, 11008*5 + 1} {
		g, u := randn(r, n, 3), randn(r, n, 1)
		out := output(t, k, "out", n)
		got := run(t, k, out, n, must(t)(k.SiLUMul(out, upload(t, k, "gate", g), upload(t, k, "up", u), n)))
		want := make([]float32, n)
		model.SiLUMul(want, g, u)
		closeTo(t, "silu_mul", got, want, 1e-6, 1e-5)
	}
}

// normShapes are the norms' test rows: CogVLM's widths and odd ones, the first row offset
// by 50 (LayerNorm must subtract the mean).
func normShapes(t *testing.T, seed uint64, f func(x, w, b []float32, rows, dim int)) {
	r := rand.New(rand.NewPCG(1, seed))
	for _, sh := range []struct{ rows, dim int }{{1, 64}, {3, 4096}, {7, 1792}, {5, 33}, {2, 1000}} {
		x := randn(r, sh.rows*sh.dim, 2)
		for i := range x[:sh.dim] {
			x[i] += 50
		}
		f(x, randn(r, sh.dim, 1), randn(r, sh.dim, 0.1), sh.rows, sh.dim)
	}
}

func TestRMSNorm(t *testing.T) {
	k := kernels(t)
	normShapes(t, 3, func(x, w, _ []float32, rows, dim int) {
		out := output(t, k, "out", rows*dim)
		got := run(t, k, out, rows*dim, must(t)(k.RMSNorm(out, upload(t, k, "x", x), upload(t, k, "w", w), rows, dim, 1e-5)))
		want := make([]float32, rows*dim)
		model.RMSNorm(want, x, w, rows, dim, 1e-5)
		closeTo(t, "rmsnorm", got, want, 1e-5, 1e-5)
	})
}

func TestLayerNorm(t *testing.T) {
	k := kernels(t)
	normShapes(t, 3, func(x, w, b []float32, rows, dim int) {
		out := output(t, k, "out", rows*dim)
		got := run(t, k, out, rows*dim, must(t)(k.LayerNorm(out, upload(t, k, "x", x), upload(t, k, "w", w), upload(t, k, "b", b), rows, dim, 1e-6)))
		want := make([]float32, rows*dim)
		model.LayerNorm(want, x, w, b, rows, dim, 1e-6)
		closeTo(t, "layernorm", got, want, 1e-5, 1e-4)
	})
}

func TestMatMul(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(1, 5))
	for _, sh := range []struct {
		m, k, n int
		bias    bool
	}{
		{1, 64, 192, false}, {1, 4096, 33, true}, {3, 1792, 100, true}, // matvec
		{5, 30, 7, false}, {67, 129, 65, true}, {130, 64, 200, false}, // tiled, ragged edges
	} {
		x, w := randn(r, sh.m*sh.k, 1), randn(r, sh.n*sh.k, 0.05)
		var bias []float32
		var bt Tensor
		if sh.bias {
			bias = randn(r, sh.n, 0.1)
			bt = upload(t, k, "bias", bias)
		}
		out := output(t, k, "out", sh.m*sh.n)
		got := run(t, k, out, sh.m*sh.n, must(t)(k.MatMul(out, upload(t, k, "x", x), upload(t, k, "w", w), bt, sh.m, sh.k, sh.n)))
		want := make([]float32, sh.m*sh.n)
		model.MatMul(want, x, w, bias, sh.m, sh.k, sh.n)
		closeTo(t, "matmul", got, want, 1e-5, 1e-5)
	}
}

// uploadKV uploads v in a KV cache's precision and returns the values the GPU sees (v
// itself, or v rounded to f16).
func uploadKV(t *testing.T, k *Kernels, label string, v []float32, p KVPrecision) (Tensor, []float32) {
	t.Helper()
	if p == KVF32 {
		return upload(t, k, label, v), v
	}
	h := make([]uint16, len(v))
	seen := make([]float32, len(v))
	for i, x := range v {
		h[i] = quant.F16FromFloat32(x)
		seen[i] = quant.F16ToFloat32(h[i])
	}
	return uploadBytes(t, k, label, u16Bytes(h)), seen
}

func TestAttention(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(1, 6))
	for _, kv := range []KVPrecision{KVF32, KVF16} {
		for _, oneRow := range []bool{false, true} {
			k.NoAttentionTiles = oneRow
			testAttention(t, k, r, kv)
		}
	}
	k.NoAttentionTiles = false
}

func testAttention(t *testing.T, k *Kernels, r *rand.Rand, kv KVPrecision) {
	for _, sh := range []struct {
		qRows, kvRows, heads, headDim int
		causal                        bool
	}{
		{37, 37, 4, 16, true},    // prefill
		{70, 70, 4, 112, false},  // vision tower: full attention, head_dim 112
		{1, 300, 32, 128, true},  // decode over a KV cache
		{5, 130, 2, 64, true},    // a chunk of queries after a cache
		{129, 129, 1, 256, true}, // the largest head_dim
		{10, 10, 1, 77, false},   // odd head_dims (a small vision tower's; f32 k and v only)
		{1, 9, 3, 23, false},
	} {
		if kv == KVF16 && sh.headDim%2 == 1 {
			continue
		}
		width := sh.heads * sh.headDim
		q := randn(r, sh.qRows*width, 1)
		kk := randn(r, sh.kvRows*width, 1)
		v := randn(r, sh.kvRows*width, 1)
		n := sh.qRows * width
		// The cache holds more rows than are valid: only kv_rows of them may be read.
		garbage := randn(r, 7*width, 100)
		kc, kSeen := uploadKV(t, k, "k", append(kk, garbage...), kv)
		vc, vSeen := uploadKV(t, k, "v", append(v, garbage...), kv)
		kk, v = kSeen[:len(kk)], vSeen[:len(v)]
		state, err := k.NewStepState("step")
		if err != nil {
			t.Fatal(err)
		}
		if err := state.Set(k.Dev, sh.kvRows, sh.kvRows-sh.qRows); err != nil {
			t.Fatal(err)
		}
		out := output(t, k, "out", n)
		cache := KVCache{K: kc, V: vc, Precision: kv}
		got := run(t, k, out, n, must(t)(k.Attention(out, upload(t, k, "q", q), cache, state, sh.qRows, sh.heads, sh.headDim, sh.causal)))
		want := make([]float32, n)
		model.Attention(want, q, kk, v, make([]float32, sh.kvRows), sh.qRows, sh.kvRows, sh.heads, sh.headDim, sh.causal)
		closeTo(t, "attention, kv "+kv.String(), got, want, 1e-5, 1e-4)
	}
}

func TestGELU(t *testing.T) {
	k := kernels(t)
	// A dense sweep over [-8, 8] checks the WGSL erf everywhere it matters, plus random values.
	var x []float32
	for v := -8.0; v <= 8; v += 1.0 / 1024 {
		x = append(x, float32(v))
	}
	x = append(x, randn(rand.New(rand.NewPCG(1, 7)), 10001, 3)...)
	xt := upload(t, k, "x", x)
	got := run(t, k, xt, len(x), must(t)(k.GELU(xt, len(x))))
	want := append([]float32(nil), x...)
	model.GELU(want)
	closeTo(t, "gelu", got, want, 1e-6, 1e-6)
}

func TestEmbedding(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(1, 8))
	const vocab, dim = 1000, 72
	table := randn(r, vocab*dim, 1)
	ids := []int{0, 999, 5, 5, 123}
	idsU := make([]uint32, len(ids))
	for i, id := range ids {
		idsU[i] = uint32(id)
	}
	out := output(t, k, "out", len(ids)*dim)
	got := run(t, k, out, len(ids)*dim, must(t)(k.Embedding(out, uploadU32(t, k, "ids", idsU), upload(t, k, "table", table), len(ids), dim)))
	want := make([]float32, len(ids)*dim)
	model.Embedding(want, ids, table, dim)
	closeTo(t, "embedding", got, want, 0, 0)
}

func TestArgmax(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(1, 9))
	greedy, err := model.NewSampler(model.Sampling{}, 32000)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 7, 32000} {
		logits := randn(r, n, 4)
		if n == 32000 { // ties: the lowest index wins, as on the CPU
			logits[31000], logits[20000] = 100, 100
		}
		res := output(t, k, "result", 1)
		raw := run(t, k, res, 1, must(t)(k.Argmax(res, upload(t, k, "logits", logits), n)))
		got := int(math.Float32bits(raw[0]))
		want := model.Argmax(logits)
		if got != want {
			t.Errorf("n=%d: argmax %d, want %d", n, got, want)
		}
		if g := greedy.Sample(logits, nil); g != want {
			t.Errorf("n=%d: the CPU sampler's greedy pick %d is not model.Argmax's %d", n, g, want)
		}
	}
}

func TestAttentionSplit(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(1, 10))
	for _, kv := range []KVPrecision{KVF32, KVF16} {
		testAttentionSplit(t, k, r, kv)
	}
}

func testAttentionSplit(t *testing.T, k *Kernels, r *rand.Rand, kv KVPrecision) {
	for _, sh := range []struct {
		qRows, kvRows, maxKV, heads, headDim, partKeys int
	}{
		{1, 300, 512, 4, 64, 128},     // a partition beyond kv_rows stays empty
		{1, 2048, 2048, 32, 128, 256}, // CogVLM decode at full context
		{5, 130, 192, 2, 112, 64},     // queries after a cache, causal
	} {
		width := sh.heads * sh.headDim
		q := randn(r, sh.qRows*width, 1)
		kc, kk := uploadKV(t, k, "k", randn(r, sh.maxKV*width, 1), kv)
		vc, v := uploadKV(t, k, "v", randn(r, sh.maxKV*width, 1), kv)
		state, err := k.NewStepState("step")
		if err != nil {
			t.Fatal(err)
		}
		if err := state.Set(k.Dev, sh.kvRows, sh.kvRows-sh.qRows); err != nil {
			t.Fatal(err)
		}
		n := sh.qRows * width
		out := output(t, k, "out", n)
		partial := output(t, k, "partial", AttentionPartials(sh.qRows, sh.heads, sh.headDim, sh.maxKV, sh.partKeys))
		steps, err := k.AttentionSplit(out, upload(t, k, "q", q), KVCache{K: kc, V: vc, Precision: kv}, partial, state,
			sh.qRows, sh.heads, sh.headDim, true, sh.maxKV, sh.partKeys)
		if err != nil {
			t.Fatal(err)
		}
		got := run(t, k, out, n, steps...)
		want := make([]float32, n)
		model.Attention(want, q, kk[:sh.kvRows*width], v[:sh.kvRows*width], make([]float32, sh.kvRows), sh.qRows, sh.kvRows, sh.heads, sh.headDim, true)
		closeTo(t, "attention split, kv "+kv.String(), got, want, 1e-5, 1e-4)
	}
}

func TestSample(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(1, 11))
	const vocab = 32000
	logits := randn(r, vocab, 4)
	logits[123], logits[77] = 30, 30 // a tie at the top: the lower id comes first
	lt := upload(t, k, "logits", logits)
	draw, err := k.Dev.CreateBuffer("draw", 16, gpu.UsageUniform|gpu.UsageCopyDst)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []model.Sampling{
		{Temperature: 1, TopK: 1},
		{Temperature: 0.7, TopK: 40},
		{Temperature: 1.3, TopK: 256},
		{Temperature: 0.9, TopK: 50, TopP: 0.9},
		{Temperature: 2, TopK: 200, TopP: 0.5},
	} {
		for _, u := range []float64{0, 0.013, 0.25, 0.5, 0.77, 0.999} {
			if err := k.Dev.WriteBuffer(draw, 0, DrawBytes(s, u)); err != nil {
				t.Fatal(err)
			}
			tok := output(t, k, "token", 1)
			raw := run(t, k, tok, 1, must(t)(k.Sample(tok, lt, draw, vocab)))
			got := int(math.Float32bits(raw[0]))
			want, err := model.Sample(logits, s, u)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%+v u=%v: GPU sampled %d, the CPU sampler %d", s, u, got, want)
			}
		}
	}
}

// TestVisionEmbed: cls, then the patch rows, plus the position embeddings, exactly.
func TestVisionEmbed(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(1, 12))
	for _, sh := range []struct{ rows, dim int }{{2, 3}, {65, 64}, {1226, 1792}} {
		cls, patches, pos := randn(r, sh.dim, 1), randn(r, (sh.rows-1)*sh.dim, 1), randn(r, sh.rows*sh.dim, 1)
		out := output(t, k, "out", sh.rows*sh.dim)
		got := run(t, k, out, sh.rows*sh.dim, must(t)(k.VisionEmbed(out, upload(t, k, "cls", cls), upload(t, k, "patches", patches),
			upload(t, k, "pos", pos), sh.rows, sh.dim)))
		want := make([]float32, sh.rows*sh.dim)
		model.VisionEmbed(want, cls, patches, pos, sh.rows, sh.dim)
		closeTo(t, fmt.Sprintf("vision embed %d×%d", sh.rows, sh.dim), got, want, 0, 0)
	}
}

// TestSplitQKV: the fused rows split into q, k and v, exactly.
func TestSplitQKV(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(1, 13))
	for _, sh := range []struct{ rows, width int }{{1, 1}, {5, 33}, {257, 1792}} {
		n := sh.rows * sh.width
		qkv := randn(r, 3*n, 1)
		q, kt, v := output(t, k, "q", n), output(t, k, "k", n), output(t, k, "v", n)
		step := must(t)(k.SplitQKV(q, kt, v, upload(t, k, "qkv", qkv), sh.rows, sh.width))
		got := run(t, k, q, n, step)
		got = append(got, run(t, k, kt, n)...)
		got = append(got, run(t, k, v, n)...)
		want := make([]float32, 3*n)
		model.SplitQKV(want[:n], want[n:2*n], want[2*n:], qkv, sh.rows, sh.width)
		closeTo(t, fmt.Sprintf("split qkv %d×%d", sh.rows, sh.width), got, want, 0, 0)
	}
}

// TestF16ToF32: halves expand exactly: zeros, subnormals, the largest half, infinities and
// random values.
func TestF16ToF32(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(1, 14))
	for _, n := range []int{1, 7, 100_001} {
		h := make([]uint16, n)
		for i := range h {
			h[i] = uint16(r.Uint32())
			if h[i]&0x7c00 == 0x7c00 && h[i]&0x3ff != 0 {
				h[i] &^= 0x3ff // NaNs compare unequal: keep infinities only
			}
		}
		copy(h, []uint16{0x0000, 0x8000, 0x0001, 0x03ff, 0x7bff, 0xfc00, 0x3555})
		dst := output(t, k, "dst", n)
		got := run(t, k, dst, n, must(t)(k.F16ToF32(dst, uploadBytes(t, k, "src", u16Bytes(h)), n)))
		want := make([]float32, n)
		model.F16ToF32(want, h)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) { // infinities and signed zeros too
				t.Fatalf("n=%d: half %#04x is %v on the GPU, %v on the CPU", n, h[i], got[i], want[i])
			}
		}
	}
}
