//go:build js && wasm

package kernels

import (
	"flag"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

var sharedKernels *Kernels

// noF16 runs the tests and benchmarks on the f32 path where the adapter has shader-f16
// (bench/device.sh times both paths with it).
var noF16 = flag.Bool("nof16", false, "keep the f32 kernels on an adapter with shader-f16 (Kernels.NoF16)")

func kernels(t *testing.T) *Kernels {
	t.Helper()
	if sharedKernels == nil {
		d, err := gpu.RequestDevice(gpu.Options{})
		if err != nil {
			t.Fatalf("RequestDevice: %v", err)
		}
		sharedKernels = NewKernels(d)
		sharedKernels.NoF16 = *noF16
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
		model.Add(want, b)
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

func TestNorms(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(1, 3))
	for _, sh := range []struct{ rows, dim int }{{1, 64}, {3, 4096}, {7, 1792}, {5, 33}, {2, 1000}} {
		x := randn(r, sh.rows*sh.dim, 2)
		for i := range x[:sh.dim] { // an offset row: LayerNorm must subtract the mean
			x[i] += 50
		}
		w, b := randn(r, sh.dim, 1), randn(r, sh.dim, 0.1)
		n := sh.rows * sh.dim

		out := output(t, k, "out", n)
		got := run(t, k, out, n, must(t)(k.RMSNorm(out, upload(t, k, "x", x), upload(t, k, "w", w), sh.rows, sh.dim, 1e-5)))
		want := make([]float32, n)
		model.RMSNorm(want, x, w, 1e-5, sh.rows, sh.dim)
		closeTo(t, "rmsnorm", got, want, 1e-5, 1e-5)

		out = output(t, k, "out", n)
		got = run(t, k, out, n, must(t)(k.LayerNorm(out, upload(t, k, "x", x), upload(t, k, "w", w), upload(t, k, "b", b), sh.rows, sh.dim, 1e-6)))
		model.LayerNorm(want, x, w, b, 1e-6, sh.rows, sh.dim)
		closeTo(t, "layernorm", got, want, 1e-5, 1e-4)
	}
}

func TestRoPE(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(1, 4))
	const maxPos = 2048
	for _, sh := range []struct{ rows, heads, headDim int }{{1, 32, 128}, {9, 4, 16}, {3, 16, 112}} {
		x := randn(r, sh.rows*sh.heads*sh.headDim, 1)
		pos := make([]int, sh.rows)
		posU := make([]uint32, sh.rows)
		for i := range pos {
			pos[i] = r.IntN(maxPos)
			posU[i] = uint32(pos[i])
		}
		xt := upload(t, k, "x", x)
		table := upload(t, k, "rope table", RoPETable(maxPos, sh.headDim, 10000))
		got := run(t, k, xt, len(x), must(t)(k.RoPE(xt, uploadU32(t, k, "pos", posU), table, sh.rows, sh.heads, sh.headDim)))
		want := append([]float32(nil), x...)
		model.RoPE(want, sh.rows, sh.heads, sh.headDim, pos, 10000)
		closeTo(t, "rope", got, want, 1e-6, 1e-6)
	}
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
	model.Embedding(want, table, ids, dim)
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
		if want := greedy.Sample(logits, nil); got != want {
			t.Errorf("n=%d: argmax %d, want %d", n, got, want)
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
		sp, err := model.NewSampler(s, vocab)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []float64{0, 0.013, 0.25, 0.5, 0.77, 0.999} {
			if err := k.Dev.WriteBuffer(draw, 0, DrawBytes(s, u)); err != nil {
				t.Fatal(err)
			}
			tok := output(t, k, "token", 1)
			raw := run(t, k, tok, 1, must(t)(k.Sample(tok, lt, draw, vocab)))
			got := int(math.Float32bits(raw[0]))
			if want := sp.SampleWith(logits, nil, u); got != want {
				t.Errorf("%+v u=%v: GPU sampled %d, the CPU sampler %d", s, u, got, want)
			}
		}
	}
}
