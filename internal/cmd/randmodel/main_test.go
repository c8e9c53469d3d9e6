package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

// TestDraw: every draw is a valid config with the properties the property test is about,
// the same for the same seed, and over many seeds every kind of awkward size turns up.
func TestDraw(t *testing.T) {
	seen := map[string]int{}
	for seed := range uint64(300) {
		cfg, q4 := Draw(seed)
		if err := cfg.Validate(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if again, q4Again := Draw(seed); !reflect.DeepEqual(again, cfg) || q4Again != q4 {
			t.Fatalf("seed %d: two draws differ", seed)
		}
		v := cfg.Vision
		if cfg.HiddenSize%64 == 0 || v.HiddenSize == cfg.HiddenSize || cfg.VocabSize != 32000 {
			t.Errorf("seed %d: hidden %d, vision hidden %d, vocabulary %d", seed, cfg.HiddenSize, v.HiddenSize, cfg.VocabSize)
		}
		// the input sizes of the matrices a q4 package quantizes (q4, or q8 for lm_head)
		inputs := []int{cfg.HiddenSize, cfg.IntermediateSize, v.HiddenSize, v.IntermediateSize}
		for _, k := range inputs {
			if q4 && k%8 != 0 {
				t.Errorf("seed %d: q4 draw with an input size %d that is no multiple of 8", seed, k)
			}
			if q4 && k%32 != 0 {
				seen["q4 group under 32"]++
			}
		}
		if !q4 {
			seen["f32 only"]++
		}
		if cfg.NumAttentionHeads%2 == 1 {
			seen["odd head count"]++
		}
		if cfg.HeadDim()%4 == 2 {
			seen["head_dim ≡ 2 mod 4"]++
		}
		if v.HeadDim()%2 == 1 {
			seen["odd vision head_dim"]++
		}
		if cfg.HiddenSize%4 != 0 {
			seen["hidden size no multiple of 4"]++
		}
		if cfg.NumHiddenLayers > 1 && v.NumHiddenLayers > 1 {
			seen["several layers"]++
		}
		if cfg.NumPatches() == 1 {
			seen["one patch"]++
		}
	}
	for _, kind := range []string{"q4 group under 32", "f32 only", "odd head count", "head_dim ≡ 2 mod 4",
		"odd vision head_dim", "hidden size no multiple of 4", "several layers", "one patch"} {
		if seen[kind] == 0 {
			t.Errorf("no draw of 300 has %s", kind)
		}
	}
	t.Log(seen)
}

// TestWrite: the checkpoint opens and holds every tensor of the config at its shape.
func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	cfg, _ := Draw(3)
	if err := write(dir, "../../../testdata/golden/tiny-chat/model", cfg, 3); err != nil {
		t.Fatal(err)
	}
	got, err := model.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Errorf("config.json reads back as %+v, want %+v", got, cfg)
	}
	c, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	specs, err := model.TensorSpecs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if shape, ok := c.Shape(s.Name); !ok || !reflect.DeepEqual(shape, s.Shape) {
			t.Errorf("%s: shape %v (present %v), want %v", s.Name, shape, ok, s.Shape)
		}
	}
	for _, name := range tokenizerFiles {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
}
