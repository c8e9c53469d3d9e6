package model

import (
	"math/rand/v2"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// BenchmarkGolden times the tiny golden model: the image through the vision tower and
// adapter, the tiny-chat prompt's prefill, and one decode step.
func BenchmarkGolden(b *testing.B) {
	m := goldenModel(b)
	goldenMu.Lock()
	defer goldenMu.Unlock()
	c := loadGoldenCase(b, "tiny-chat")
	in := BuildInputs(c.textIDs(m.Config), true, m.Config)
	pixels := c.tensors["pixel_values"]
	image, err := m.EncodeImage(pixels)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("vision", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.EncodeImage(pixels); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("prefill", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := m.Prefill(in, image, 1); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(in.InputIDs))*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			if _, _, err := m.Prefill(in, image, 1); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := m.Decode(c.expected.GeneratedIDs[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecoderLayer7B times ONE decoder layer at CogVLM-17B's size (hidden 4096, 32
// heads, MLP 11008) with random weights, in float32 and in q4 as a package stores them: a
// decode step against a 1024-token cache, and a 16-token prefill whose middle rows use
// the vision expert. The two experts share their weight memory (800 MB instead of 1.6 GB
// in float32); the work is the same.
func BenchmarkDecoderLayer7B(b *testing.B) {
	cfg := Config{
		HiddenSize: 4096, IntermediateSize: 11008, NumAttentionHeads: 32, NumHiddenLayers: 1,
		VocabSize: 1, RMSNormEps: 1e-5, MaxPositionEmbeddings: 2048,
	}
	const H, I = 4096, 11008
	r := rand.New(rand.NewPCG(1, 1))
	fill := func(n int, scale float32) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = (r.Float32()*2 - 1) * scale
		}
		return s
	}
	for _, enc := range []quant.Encoding{quant.F32, quant.Q4} {
		matrix := func(n, k int) Matrix {
			w := F32Matrix(n, k, fill(n*k, 0.02))
			if enc == quant.Q4 {
				q, s, err := quant.QuantizeQ4(w.F32, n, k, quant.DefaultGroupSize)
				if err != nil {
					b.Fatal(err)
				}
				w = Matrix{N: n, K: k, Encoding: quant.Q4, Words: q, Scales: s, GroupSize: quant.DefaultGroupSize}
			}
			return w
		}
		lw := &DecoderLayer{
			InputLayernorm:         fill(H, 1),
			PostAttentionLayernorm: fill(H, 1),
			LanguageQueryKeyValue:  matrix(3*H, H),
			LanguageDense:          matrix(H, H),
			LanguageGateProj:       matrix(I, H),
			LanguageUpProj:         matrix(I, H),
			LanguageDownProj:       matrix(H, I),
		}
		lw.VisionQueryKeyValue, lw.VisionDense = lw.LanguageQueryKeyValue, lw.LanguageDense
		lw.VisionGateProj, lw.VisionUpProj, lw.VisionDownProj = lw.LanguageGateProj, lw.LanguageUpProj, lw.LanguageDownProj

		const cached, prefill = 1024, 16
		st := newDecoderState(cfg, cached+prefill, prefill)
		copy(st.x, fill(prefill*H, 1))

		b.Run(string(enc)+"/decode", func(b *testing.B) {
			st.lastPos = cached - 1
			for b.Loop() {
				st.length = cached
				st.layer(lw, 0, 1, []int{cached}, st.langRun[:])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
		b.Run(string(enc)+"/prefill16", func(b *testing.B) {
			positions := make([]int, prefill)
			vision := make([]bool, prefill)
			for i := range positions {
				positions[i] = i
				vision[i] = i >= 1 && i < 12
			}
			runs := ExpertRuns(nil, vision)
			for b.Loop() {
				st.length = 0
				st.layer(lw, 0, prefill, positions, runs)
			}
			b.ReportMetric(float64(prefill*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkMatMul times the op at prefill shape (64 rows) and decode shape (one row) of a
// 4096×4096 projection.
func BenchmarkMatMul(b *testing.B) {
	const k, n = 4096, 4096
	r := rand.New(rand.NewPCG(2, 2))
	w := randSlice(r, n*k)
	for _, m := range []int{1, 64} {
		x, out := randSlice(r, m*k), make([]float32, m*n)
		b.Run(map[int]string{1: "decode", 64: "prefill64"}[m], func(b *testing.B) {
			for b.Loop() {
				MatMul(out, x, w, nil, m, k, n)
			}
			b.ReportMetric(float64(m*k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}
