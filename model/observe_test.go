package model

import (
	"slices"
	"strings"
	"testing"
)

// TestObserveLinear runs the golden chat case with an observer: every Linear weight of
// the model is seen, under its checkpoint name and with its input width; each decoder
// expert sees exactly its own rows (VisionExpertMask); the rows are the MatMul inputs
// (checked for the first vision layer's query_key_value, recomputed from the patches);
// and the outputs are bit-identical to a run without the observer.
func TestObserveLinear(t *testing.T) {
	m := goldenModel(t)
	goldenMu.Lock()
	defer goldenMu.Unlock()
	c := loadGoldenCase(t, "tiny-chat")
	in := Inputs{InputIDs: c.expected.InputIDs, TokenTypeIDs: c.expected.TokenTypeIDs, PositionIDs: c.expected.PositionIDs}
	pixels := c.tensors["pixel_values"]

	plain, err := m.Generate(in, pixels, Sampling{MaxNewTokens: 3, KeepStepLogits: true}, nil)
	if err != nil {
		t.Fatal(err)
	}

	rows := map[string]int{}
	var firstQKV []float32
	m.ObserveLinear = func(weight string, x []float32, n, k int) {
		if len(x) != n*k {
			t.Errorf("%s: %d input values for %d rows of %d", weight, len(x), n, k)
		}
		rows[weight] += n
		if weight == "model.vision.transformer.layers.0.attention.query_key_value.weight" && firstQKV == nil {
			firstQKV = slices.Clone(x)
		}
	}
	observed, err := m.Generate(in, pixels, Sampling{MaxNewTokens: 3, KeepStepLogits: true}, nil)
	m.ObserveLinear = nil
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plain.StepLogits, observed.StepLogits) || !slices.Equal(plain.VisionOut, observed.VisionOut) {
		t.Error("the observer changed the model's outputs")
	}

	specs, err := TensorSpecs(m.Config)
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string][]int{}
	for _, s := range specs {
		shapes[s.Name] = s.Shape
	}
	// every 2-D weight but the two tables of rows is a Linear (the patch embedding as its matmul)
	for _, s := range specs {
		linear := strings.HasSuffix(s.Name, ".weight") && len(s.Shape) >= 2 &&
			s.Name != "model.embed_tokens.weight" && !strings.Contains(s.Name, "position_embedding")
		if _, seen := rows[s.Name]; seen != linear {
			t.Errorf("%s %v: observed %v, want %v", s.Name, s.Shape, seen, linear)
		}
	}
	for name := range rows {
		if _, ok := shapes[name]; !ok {
			t.Errorf("observed %q, which is no tensor of the checkpoint", name)
		}
	}

	cfg := m.Config
	patches := cfg.Vision.ImageSize / cfg.Vision.PatchSize
	patches *= patches
	visionRows := 0
	for _, v := range in.VisionExpertMask() {
		if v {
			visionRows++
		}
	}
	textRows := len(in.InputIDs) - visionRows + 2 // and one row per decode step after the first token
	for name, want := range map[string]int{
		"model.vision.patch_embedding.proj.weight":                        patches,
		"model.vision.transformer.layers.1.mlp.fc2.weight":                patches + 1,
		"model.vision.linear_proj.dense_4h_to_h.weight":                   patches,
		"model.layers.0.self_attn.vision_expert_query_key_value.weight":   visionRows,
		"model.layers.1.mlp.vision_mlp.down_proj.weight":                  visionRows,
		"model.layers.0.self_attn.language_expert_query_key_value.weight": textRows,
		"model.layers.1.mlp.language_mlp.down_proj.weight":                textRows,
		"lm_head.weight": 3,
	} {
		if rows[name] != want {
			t.Errorf("%s: observed %d rows, want %d", name, rows[name], want)
		}
	}

	// the first vision layer's input: patch embedding + bias, cls, position embeddings
	w := &m.Weights.Vision
	D := cfg.Vision.HiddenSize
	want := make([]float32, (patches+1)*D)
	MatMul(want[D:], Patches(cfg.Vision, pixels), w.PatchWeight.F32, w.PatchBias, patches, w.PatchWeight.K, D)
	copy(want[:D], w.ClsEmbedding)
	Add(want, want, w.PositionEmbedding)
	if !slices.Equal(firstQKV, want) {
		t.Error("the first vision query_key_value's observed input is not the embedded patches")
	}
}

// TestModelTensor: Tensor returns the model's own slice (writes reach the model) and
// leaves the loaded layers in place.
func TestModelTensor(t *testing.T) {
	m := goldenModel(t)
	layers := &m.Weights.Layers[0]
	got, ok := m.Tensor("model.layers.1.mlp.vision_mlp.down_proj.weight")
	if !ok || len(got) == 0 || &got[0] != &m.Weights.Layers[1].VisionDownProj.F32[0] {
		t.Error("Tensor does not return the model's down_proj slice")
	}
	if &m.Weights.Layers[0] != layers {
		t.Error("Tensor reallocated the model's layers")
	}
	if _, ok := m.Tensor("model.layers.9.mlp.vision_mlp.down_proj.weight"); ok {
		t.Error("Tensor found a layer the model does not have")
	}
}
