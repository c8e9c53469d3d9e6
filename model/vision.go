package model

import "fmt"

// EncodeImage runs one image through the vision tower and the adapter. pixels are the
// normalised pixel_values, CHW [C, S, S]. The result is the rows that replace the image
// tokens' embeddings: [boi, grid² adapted patch features, eoi], [NumImageTokens, H].
func (m *Model) EncodeImage(pixels []float32) ([]float32, error) {
	if want := m.Config.PixelCount(); len(pixels) != want {
		v := m.Config.Vision
		return nil, fmt.Errorf("pixel values have %d elements, want %d (%d×%d×%d CHW)",
			len(pixels), want, v.InChannels, v.ImageSize, v.ImageSize)
	}
	features := visionTower(m.Config.Vision, &m.Weights.Vision, pixels, m.ObserveLinear)
	return adapter(m.Config, &m.Weights.Adapter, features, m.ObserveLinear), nil
}

// Patches lays the image's patches out as rows, [grid², C·P·P], each in the conv
// weight's (c, ky, kx) order, patches row by row: the Conv2d with kernel = stride = P is
// then a matmul with the weight as [D, C·P·P]. The GPU engine uploads these rows too.
func Patches(cfg VisionConfig, pixels []float32) []float32 {
	S, C, P := cfg.ImageSize, cfg.InChannels, cfg.PatchSize
	grid := S / P
	patchLen := C * P * P
	cols := make([]float32, grid*grid*patchLen)
	for gy := range grid {
		for gx := range grid {
			row := cols[(gy*grid+gx)*patchLen:][:patchLen]
			for c := range C {
				for ky := range P {
					src := pixels[c*S*S+(gy*P+ky)*S+gx*P:][:P]
					copy(row[(c*P+ky)*P:][:P], src)
				}
			}
		}
	}
	return cols
}

// visionTower is EVA2-CLIP: patch embedding, cls token and position embeddings, the
// transformer layers, then the cls token is dropped. It returns [grid², D]. obs (may be
// nil) sees every Linear's input.
func visionTower(cfg VisionConfig, w *VisionWeights, pixels []float32, obs LinearObserver) []float32 {
	S, C, P := cfg.ImageSize, cfg.InChannels, cfg.PatchSize
	D, F, heads := cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHeads
	grid := S / P
	patches := grid * grid
	N := patches + 1 // tokens: cls + patches
	patchLen := C * P * P

	// patch embedding: the Conv2d with kernel = stride = P is a matmul over the patches
	cols := Patches(cfg, pixels)
	x := make([]float32, N*D) // (N, D) residual stream
	obs.see(VisionPatchWeightName, cols, patches, patchLen)
	w.PatchWeight.MatMul(x[D:], cols, w.PatchBias, patches)

	// cls token first, then every row gets its position embedding
	VisionEmbed(x, w.ClsEmbedding, x[D:], w.PositionEmbedding, N, D)

	qkv := make([]float32, 3*N*D) // q, k, v, each (N, D)
	q, k, v := qkv[:N*D], qkv[N*D:2*N*D], qkv[2*N*D:]
	att := make([]float32, N*D)
	h := make([]float32, N*D)
	mlp := make([]float32, N*F)
	scores := make([]float32, AttentionScratchLen(N))
	for l := range w.Layers {
		lw, names := &w.Layers[l], obs.visionLayerNames(l)
		// attention: the fused query_key_value output is [3][heads][head_dim], so its
		// weight rows split into the q, k and v projections
		obs.see(names.QueryKeyValueWeight, x, N, D)
		lw.QueryKeyValueWeight.Rows(0, D).MatMul(q, x, lw.QueryKeyValueBias[:D], N)
		lw.QueryKeyValueWeight.Rows(D, 2*D).MatMul(k, x, lw.QueryKeyValueBias[D:2*D], N)
		lw.QueryKeyValueWeight.Rows(2*D, 3*D).MatMul(v, x, lw.QueryKeyValueBias[2*D:], N)
		Attention(att, q, k, v, scores, N, N, heads, D/heads, false)
		obs.see(names.DenseWeight, att, N, D)
		lw.DenseWeight.MatMul(h, att, lw.DenseBias, N)
		// residual with the norm on the branch output: x = x + LN_in(attn(x))
		LayerNorm(h, h, lw.InputLayernormWeight, lw.InputLayernormBias, N, D, cfg.LayerNormEps)
		Add(x, x, h)

		// MLP: x = x + LN_post(fc2(gelu(fc1(x))))
		obs.see(names.FC1Weight, x, N, D)
		lw.FC1Weight.MatMul(mlp, x, lw.FC1Bias, N)
		GELU(mlp)
		obs.see(names.FC2Weight, mlp, N, F)
		lw.FC2Weight.MatMul(h, mlp, lw.FC2Bias, N)
		LayerNorm(h, h, lw.PostAttentionLayernormWeight, lw.PostAttentionLayernormBias, N, D, cfg.LayerNormEps)
		Add(x, x, h)
	}
	// drop the cls token
	return x[D:]
}
