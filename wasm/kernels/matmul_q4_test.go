//go:build js && wasm

package kernels

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

func u16Bytes(v []uint16) []byte {
	b := make([]byte, (2*len(v)+3)&^3) // bindings are whole u32 words
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

func uploadBytes(t *testing.T, k *Kernels, label string, b []byte) Tensor {
	t.Helper()
	buf, err := k.Dev.CreateBuffer(label, uint64(len(b)), gpu.UsageStorage|gpu.UsageCopyDst)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Dev.WriteBuffer(buf, 0, b); err != nil {
		t.Fatal(err)
	}
	return Whole(buf)
}

// randomQ4 draws q4 data directly (uniform nibbles, scales around 0.01), which is what a
// quantized Gaussian matrix looks like, without quantizing millions of floats in WASM.
func randomQ4(r *rand.Rand, n, k, g int) ([]uint32, []uint16) {
	q := make([]uint32, n*k/8)
	for i := range q {
		q[i] = r.Uint32()
	}
	s := make([]uint16, n*k/g)
	for i := range s {
		s[i] = quant.F16FromFloat32(0.005 + 0.01*r.Float32())
	}
	return q, s
}

func checkMatMulQ4(t *testing.T, k *Kernels, r *rand.Rand, m, kdim, n, g int, withBias bool, quantize bool) {
	t.Helper()
	x := randn(r, m*kdim, 1)
	var q []uint32
	var s []uint16
	if quantize {
		var err error
		if q, s, err = quant.QuantizeQ4(randn(r, n*kdim, 0.05), n, kdim, g); err != nil {
			t.Fatal(err)
		}
	} else {
		q, s = randomQ4(r, n, kdim, g)
	}
	var bias []float32
	var bt Tensor
	if withBias {
		bias = randn(r, n, 0.1)
		bt = upload(t, k, "bias", bias)
	}
	out := output(t, k, "out", m*n)
	xt, qt, st := upload(t, k, "x", x), uploadU32(t, k, "qweight", q), uploadBytes(t, k, "scales", u16Bytes(s))
	// Real-size weights are tens of MB: free them now rather than at garbage collection.
	defer func() {
		for _, b := range []Tensor{out, xt, qt, st} {
			b.Buf.Destroy()
		}
	}()
	got := run(t, k, out, m*n, must(t)(k.MatMulQ4(out, xt, qt, st, bt, m, kdim, n, g)))
	want := make([]float32, m*n)
	what := fmt.Sprintf("matmul q4 m=%d k=%d n=%d g=%d", m, kdim, n, g)
	if k.q4F16(m, kdim, g) {
		closeF16(t, what+" (f16)", got, x, quant.DequantizeQ4(q, s, n, kdim, g), bias, m, kdim, n)
		return
	}
	quant.MatMulQ4(want, x, q, s, bias, m, kdim, n, g)
	closeTo(t, what, got, want, 1e-4, 1e-4)
}

// closeF16 compares an f16 kernel's output with its twin, MatMulF16, whose answer is an
// interval: got must lie within it, give or take the f32 accumulation's 1e-4. The
// interval is a worst case (every rounding the same way); the errors of a sum of many
// words add up like a random walk, so on the whole the outputs must also be within 2⁻⁹
// RMS of the twin's (measured: below 2⁻¹¹; a wrong word or scale in a row of 512 words
// would be 2⁻⁵).
func closeF16(t *testing.T, what string, got, x, w, bias []float32, m, kdim, n int) {
	t.Helper()
	want, bound := make([]float32, m*n), make([]float32, m*n)
	MatMulF16(want, bound, x, w, bias, m, kdim, n)
	closeTo(t, what, got, nearestIn(got, want, bound), 1e-4, 1e-4)
	if e := compareF16(got, want); !(e.rmsRel <= 1.0/512) {
		t.Errorf("%s: RMS difference from the twin %.3g of the RMS output, beyond 2⁻⁹", what, e.rmsRel)
	}
}

func TestMatMulQ4(t *testing.T) {
	k := kernels(t)
	if !k.Dev.Has(gpu.FeatureSubgroups) {
		t.Log("the adapter has no subgroups: only the workgroup-memory kernels are tested")
	}
	hasF16 := k.Dev.Has(gpu.FeatureShaderF16)
	if !hasF16 {
		t.Log("the adapter has no shader-f16: only the f32 kernels are tested")
	}
	defer func(old bool) { k.NoF16, k.NoSubgroups = old, false }(k.NoF16)
	for _, noF16 := range []bool{false, true} {
		for _, noSubgroups := range []bool{false, true} {
			if !noF16 && !hasF16 {
				continue // the same kernels as with NoF16
			}
			k.NoF16, k.NoSubgroups = noF16, noSubgroups
			testMatMulQ4(t, k)
		}
	}
}

func testMatMulQ4(t *testing.T, k *Kernels) {
	r := rand.New(rand.NewPCG(2, 1))
	for _, sh := range []struct {
		m, k, n, g int
		bias       bool
	}{
		{1, 32, 1, 32, false}, {1, 96, 7, 32, true}, {3, 4128, 33, 32, false}, {2, 256, 5, 64, true}, // matvec
		{1, 176, 64, 16, false}, {2, 168, 9, 8, true}, {1, 8, 4, 8, false}, // matvec: groups below 32, K not a multiple of 32
		{5, 64, 3, 32, false}, {67, 160, 129, 32, true}, {130, 96, 70, 32, false}, {9, 128, 65, 64, false}, // prefill
		{17, 4096, 300, 32, false}, {33, 11008, 20, 32, true}, // prefill: both kernels' long K loops, several row blocks
		{7, 176, 64, 16, true}, // prefill, group 16 (the tiny models' MLP)
	} {
		for _, kind := range []PrefillQ4{PrefillTiled, PrefillRows} {
			if sh.m <= matVecMaxRows && kind != PrefillTiled {
				continue // decode: one kernel whatever PrefillQ4 says
			}
			k.PrefillQ4 = kind
			checkMatMulQ4(t, k, r, sh.m, sh.k, sh.n, sh.g, sh.bias, true)
		}
	}
	// K not a multiple of 16: only the rows kernel takes it, and the rule picks it.
	k.PrefillQ4 = PrefillAuto
	checkMatMulQ4(t, k, r, 6, 168, 9, 8, true, true)
	if k.prefillQ4(64, 4096) != PrefillRows && k.Dev.Info.CPU() {
		t.Errorf("on a CPU adapter the rule picks %v for M = 64, want the rows kernel", k.prefillQ4(64, 4096))
	}
	k.PrefillQ4 = PrefillTiled
	if _, err := k.MatMulQ4(Tensor{}, Tensor{}, Tensor{}, Tensor{}, Tensor{}, 6, 168, 9, 8); err == nil {
		t.Error("the tiled kernel accepted K = 168")
	}
	k.PrefillQ4 = PrefillAuto
}

// TestMatVecQ4RealSizes runs decode at CogVLM's real shapes (K×N as in the peer harness).
func TestMatVecQ4RealSizes(t *testing.T) {
	if testing.Short() {
		t.Skip("real sizes take a while on SwiftShader")
	}
	k := kernels(t)
	r := rand.New(rand.NewPCG(2, 2))
	for _, sh := range []struct{ k, n int }{{4096, 4096}, {4096, 12288}, {11008, 4096}, {4096, 11008}, {4096, 32000}} {
		checkMatMulQ4(t, k, r, 1, sh.k, sh.n, 32, false, false)
	}
}

func TestQ8(t *testing.T) {
	k := kernels(t)
	for _, noSubgroups := range []bool{false, true} {
		k.NoSubgroups = noSubgroups
		testQ8(t, k)
	}
	k.NoSubgroups = false
}

func testQ8(t *testing.T, k *Kernels) {
	r := rand.New(rand.NewPCG(2, 3))
	for _, sh := range []struct{ m, k, n, g int }{
		{1, 64, 33, 32}, {2, 4096, 70, 32}, {1, 128, 5, 64}, // decode
		{5, 64, 3, 32}, {37, 4096, 70, 32}, {17, 176, 64, 16}, {6, 12, 9, 4}, // prefill: rows kernel
	} {
		x := randn(r, sh.m*sh.k, 1)
		q, s, err := quant.QuantizeQ8(randn(r, sh.n*sh.k, 0.05), sh.n, sh.k, sh.g)
		if err != nil {
			t.Fatal(err)
		}
		qt, st := uploadU32(t, k, "qweight", q), uploadBytes(t, k, "scales", u16Bytes(s))
		out := output(t, k, "out", sh.m*sh.n)
		got := run(t, k, out, sh.m*sh.n, must(t)(k.MatMulQ8(out, upload(t, k, "x", x), qt, st, Tensor{}, sh.m, sh.k, sh.n, sh.g)))
		want := make([]float32, sh.m*sh.n)
		quant.MatMulQ8(want, x, q, s, nil, sh.m, sh.k, sh.n, sh.g)
		closeTo(t, fmt.Sprintf("matmul q8 m=%d k=%d n=%d g=%d", sh.m, sh.k, sh.n, sh.g), got, want, 1e-4, 1e-4)

		// The same table as an embedding: rows gathered exactly.
		ids := []int{0, sh.n - 1, 3 % sh.n}
		idsU := []uint32{uint32(ids[0]), uint32(ids[1]), uint32(ids[2])}
		emb := output(t, k, "emb", len(ids)*sh.k)
		got = run(t, k, emb, len(ids)*sh.k, must(t)(k.EmbeddingQ8(emb, uploadU32(t, k, "ids", idsU), qt, st, len(ids), sh.k, sh.g)))
		wantE := make([]float32, len(ids)*sh.k)
		model.Embedding(wantE, quant.DequantizeQ8(q, s, sh.n, sh.k, sh.g), ids, sh.k)
		closeTo(t, "embedding q8", got, wantE, 0, 0)
	}
}

// TestEmbeddingQ4: rows of a q4 table are gathered exactly (groups of 32 and of 16).
func TestEmbeddingQ4(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(2, 4))
	for _, sh := range []struct{ vocab, dim, g int }{{50, 64, 32}, {7, 176, 16}} {
		q, s, err := quant.QuantizeQ4(randn(r, sh.vocab*sh.dim, 0.05), sh.vocab, sh.dim, sh.g)
		if err != nil {
			t.Fatal(err)
		}
		ids := []int{0, sh.vocab - 1, 3, 3}
		idsU := []uint32{uint32(ids[0]), uint32(ids[1]), uint32(ids[2]), uint32(ids[3])}
		out := output(t, k, "emb", len(ids)*sh.dim)
		got := run(t, k, out, len(ids)*sh.dim, must(t)(k.EmbeddingQ4(out, uploadU32(t, k, "ids", idsU),
			uploadU32(t, k, "qweight", q), uploadBytes(t, k, "scales", u16Bytes(s)), len(ids), sh.dim, sh.g)))
		want := make([]float32, len(ids)*sh.dim)
		model.Embedding(want, quant.DequantizeQ4(q, s, sh.vocab, sh.dim, sh.g), ids, sh.dim)
		closeTo(t, fmt.Sprintf("embedding q4 dim=%d g=%d", sh.dim, sh.g), got, want, 0, 0)
	}
}
