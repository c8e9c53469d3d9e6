package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func goldenConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := LoadConfig(filepath.Join(goldenDir, "tiny-chat", "model", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestLoadConfigGolden(t *testing.T) {
	cfg := goldenConfig(t)
	v := cfg.Vision
	got := []int{cfg.HiddenSize, cfg.IntermediateSize, cfg.NumAttentionHeads, cfg.NumHiddenLayers, cfg.VocabSize,
		cfg.MaxPositionEmbeddings, cfg.BOSTokenID, cfg.EOSTokenID, cfg.PadTokenID,
		v.HiddenSize, v.ImageSize, v.InChannels, v.IntermediateSize, v.NumHeads, v.NumHiddenLayers, v.NumPositions, v.PatchSize,
		cfg.HeadDim(), v.HeadDim(), cfg.VisionGrid(), cfg.NumPatches(), cfg.NumImageTokens(), cfg.PixelCount()}
	want := []int{64, 176, 4, 2, 32000, 2048, 1, 2, 0, 64, 28, 3, 256, 4, 2, 5, 14, 16, 16, 2, 4, 6, 3 * 28 * 28}
	if len(got) != len(want) {
		t.Fatal("test tables differ in length")
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("value %d = %d, want %d (got %v)", i, got[i], want[i], got)
			break
		}
	}
	if cfg.RMSNormEps != 1e-5 || v.LayerNormEps != 1e-6 || cfg.TemplateVersion != "chat" {
		t.Errorf("rms_norm_eps %v, layer_norm_eps %v, template_version %q", cfg.RMSNormEps, v.LayerNormEps, cfg.TemplateVersion)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*Config)
		errHas string // "" = valid
	}{
		{"golden", func(*Config) {}, ""},
		{"architectures absent", func(c *Config) { c.Architectures = nil }, ""},
		{"other architecture", func(c *Config) { c.Architectures = []string{"LlamaForCausalLM"} }, `architectures ["LlamaForCausalLM"]`},
		{"zero hidden", func(c *Config) { c.HiddenSize = 0 }, "hidden_size 0 must be positive"},
		{"negative vocab", func(c *Config) { c.VocabSize = -1 }, "vocab_size -1 must be positive"},
		{"no vision layers", func(c *Config) { c.Vision.NumHiddenLayers = 0 }, "vision_config.num_hidden_layers 0"},
		{"hidden % heads", func(c *Config) { c.NumAttentionHeads = 5 }, "hidden_size 64 is not a multiple of num_attention_heads 5"},
		{"odd head_dim", func(c *Config) { c.HiddenSize, c.NumAttentionHeads = 60, 4 }, "head_dim 15"},
		{"vision hidden % heads", func(c *Config) { c.Vision.NumHeads = 3 }, "vision_config.hidden_size 64 is not a multiple of vision_config.num_heads 3"},
		{"image % patch", func(c *Config) { c.Vision.ImageSize = 30 }, "vision_config.image_size 30 is not a multiple of vision_config.patch_size 14"},
		{"num_positions", func(c *Config) { c.Vision.NumPositions = 4 }, "vision_config.num_positions 4 must be (image_size/patch_size)²+1 = 5"},
		{"rms eps zero", func(c *Config) { c.RMSNormEps = 0 }, "rms_norm_eps 0"},
		{"layer norm eps NaN", func(c *Config) { c.Vision.LayerNormEps = math.NaN() }, "vision_config.layer_norm_eps NaN"},
		{"eos outside vocab", func(c *Config) { c.EOSTokenID = 32000 }, "eos_token_id 32000 is outside the vocabulary [0, 32000)"},
		{"tied embeddings", func(c *Config) { c.TieWordEmbeddings = true }, "tie_word_embeddings"},
		{"hidden_act", func(c *Config) { c.HiddenAct = "gelu" }, `hidden_act "gelu"`},
		{"vision hidden_act", func(c *Config) { c.Vision.HiddenAct = "quick_gelu" }, `vision_config.hidden_act "quick_gelu"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := goldenConfig(t)
			tc.edit(&cfg)
			err := cfg.Validate()
			switch {
			case tc.errHas == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.errHas != "" && err == nil:
				t.Errorf("no error, want one containing %q", tc.errHas)
			case tc.errHas != "" && !strings.Contains(err.Error(), tc.errHas):
				t.Errorf("error %q does not contain %q", err, tc.errHas)
			}
		})
	}
}

func TestVisionConfigAliases(t *testing.T) {
	for _, tc := range []struct {
		name         string
		json         string
		heads, chans int
		errHas       string
	}{
		{"THUDM keys", `{"num_heads": 16, "in_channels": 3}`, 16, 3, ""},
		{"HF port keys", `{"num_attention_heads": 16, "num_channels": 3}`, 16, 3, ""},
		{"both agreeing", `{"num_heads": 16, "num_attention_heads": 16, "in_channels": 3, "num_channels": 3}`, 16, 3, ""},
		{"heads disagree", `{"num_heads": 16, "num_attention_heads": 8}`, 0, 0, "vision_config.num_heads 16 disagrees with vision_config.num_attention_heads 8"},
		{"channels disagree", `{"in_channels": 3, "num_channels": 1}`, 0, 0, "vision_config.in_channels 3 disagrees with vision_config.num_channels 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v VisionConfig
			err := json.Unmarshal([]byte(tc.json), &v)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("error %v, want one containing %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.NumHeads != tc.heads || v.InChannels != tc.chans {
				t.Errorf("num_heads %d, in_channels %d; want %d, %d", v.NumHeads, v.InChannels, tc.heads, tc.chans)
			}
		})
	}
}

func TestLoadConfigErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, errHas string
	}{
		{"bad-json.json", `{"hidden_size": `, "bad-json.json"},
		{"wrong-type.json", `{"hidden_size": "64"}`, "hidden_size"},
		{"invalid.json", `{"hidden_size": 64}`, "invalid.json: intermediate_size 0 must be positive"},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(path)
		if err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming %s and containing %q", tc.name, err, path, tc.errHas)
		}
	}
	if _, err := LoadConfig(filepath.Join(dir, "absent.json")); err == nil || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("missing file: error %v", err)
	}
}
