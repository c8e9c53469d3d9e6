package model

// adapter is CogVLM's GLU: it maps the vision features [grid², D] into the language
// model's space and puts the learned boi and eoi rows around them. It returns
// [grid²+2, H], the rows of the image tokens in order. obs (may be nil) sees every
// Linear's input.
func adapter(cfg Config, w *AdapterWeights, features []float32, obs LinearObserver) []float32 {
	H, I, D := cfg.HiddenSize, cfg.IntermediateSize, cfg.Vision.HiddenSize
	patches := len(features) / D

	// linear_proj, then LayerNorm (nn.LayerNorm's default eps) and exact GELU
	h := make([]float32, patches*H)
	obs.see(AdapterLinearProjName, features, patches, D)
	w.LinearProj.MatMul(h, features, nil, patches)
	LayerNorm(h, h, w.Norm1Weight, w.Norm1Bias, patches, H, AdapterLayerNormEps)
	GELU(h)

	// silu(gate_proj(h)) * dense_h_to_4h(h)
	gate := make([]float32, patches*I)
	up := make([]float32, patches*I)
	obs.see(AdapterGateProjName, h, patches, H)
	w.GateProj.MatMul(gate, h, nil, patches)
	obs.see(AdapterDenseHTo4HName, h, patches, H)
	w.DenseHTo4H.MatMul(up, h, nil, patches)
	SiLUMul(gate, gate, up)

	// dense_4h_to_h straight into the rows between boi and eoi
	out := make([]float32, (patches+2)*H)
	obs.see(AdapterDense4HToHName, gate, patches, I)
	w.Dense4HToH.MatMul(out[H:(patches+1)*H], gate, nil, patches)
	Copy(out[:H], w.BOI)
	Copy(out[(patches+1)*H:], w.EOI)
	return out
}
