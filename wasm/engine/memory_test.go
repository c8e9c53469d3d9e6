//go:build js && wasm

package engine

import (
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/pkg"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

// TestMemoryPlan holds the plan to the bytes the device actually allocates for the
// package, the decoder and the vision tower.
func TestMemoryPlan(t *testing.T) {
	d, err := gpu.RequestDevice(gpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Destroy()
	k := newKernels(t, d)
	used := func() int64 { return d.Allocated() - k.OverheadBytes() }
	p := loadTestPackage(t, k, "tiny-q4")
	// 300 positions: long enough for the split decode attention and its partials
	plan := PlanMemory(p.Config, p.Manifest, 300, 16, kernels.KVF16)
	if got := used(); got != plan.Weights {
		t.Errorf("weights: allocated %d bytes, planned %d", got, plan.Weights)
	}
	before := used()
	if _, err := NewDecoder(k, p, 300, 16, kernels.KVF16); err != nil {
		t.Fatal(err)
	}
	if got := used() - before; got != plan.KVCache+plan.Decoder {
		t.Errorf("decoder: allocated %d bytes, planned %d", got, plan.KVCache+plan.Decoder)
	}
	before = used()
	if _, err := NewVision(k, p); err != nil {
		t.Fatal(err)
	}
	if got := used() - before; got != plan.Vision {
		t.Errorf("vision: allocated %d bytes, planned %d", got, plan.Vision)
	}
	t.Logf("tiny q4: %s", plan)
}

// cogvlm17B is THUDM/cogvlm-chat-hf's config.json (DESIGN.md).
var cogvlm17B = model.Config{
	Architectures: []string{model.Architecture}, BOSTokenID: 1, EOSTokenID: 2, HiddenAct: "silu",
	HiddenSize: 4096, IntermediateSize: 11008, MaxPositionEmbeddings: 2048, NumAttentionHeads: 32,
	NumHiddenLayers: 32, RMSNormEps: 1e-5, TemplateVersion: "chat", VocabSize: 32000,
	Vision: model.VisionConfig{HiddenAct: "gelu", HiddenSize: 1792, ImageSize: 490, InChannels: 3,
		IntermediateSize: 15360, LayerNormEps: 1e-6, NumHeads: 16, NumHiddenLayers: 63, NumPositions: 1226, PatchSize: 14},
}

// TestMemoryPlan17B prints CogVLM-17B's plan at q4 and checks it against the limits of
// this adapter and of the WebGPU defaults.
func TestMemoryPlan17B(t *testing.T) {
	if err := cogvlm17B.Validate(); err != nil {
		t.Fatal(err)
	}
	m, err := pkg.PlanManifest(cogvlm17B, pkg.ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seq, prefill := SessionSizes(cogvlm17B, 0)
	plan := PlanMemory(cogvlm17B, m, seq, prefill, kernels.KVF16)
	t.Logf("CogVLM-17B q4: %s", plan)
	if plan.Weights < 9e9 || plan.Weights > 11e9 {
		t.Errorf("weights %d bytes, expected about 10 GB at q4", plan.Weights)
	}
	// The WebGPU defaults (256 MiB buffers, 128 MiB bindings) must hold every buffer:
	// the package's shards are sized for them.
	if err := plan.Check(gpu.Limits{MaxBufferSize: 256 << 20, MaxStorageBufferBindingSize: 128 << 20}); err != nil {
		t.Errorf("default limits: %v", err)
	}
	// A device with 64 MiB buffers is refused with the numbers.
	if err := plan.Check(gpu.Limits{MaxBufferSize: 64 << 20, MaxStorageBufferBindingSize: 64 << 20}); err == nil {
		t.Error("64 MiB limits accepted")
	} else {
		t.Logf("refused as it should be: %v", err)
	}
}
