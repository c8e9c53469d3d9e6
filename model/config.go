package model

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
)

// Architecture is the value config.json's "architectures" must contain when present.
const Architecture = "CogVLMForCausalLM"

// RoPEBase is the rotary base of the language model. CogVLM's config.json has no
// rope_theta key: the original code hard-codes 10000 (LLaMA-2's value).
const RoPEBase = 10000.0

// AdapterLayerNormEps is the epsilon of the GLU adapter's LayerNorm (norm1). The original
// code builds it with nn.LayerNorm's default, so config.json does not carry it.
const AdapterLayerNormEps = 1e-5

// Limits of Validate (CogVLM-17B: 32 and 63 layers, widths up to 32000, 2048 positions,
// 490-pixel images).
const (
	maxLayers     = 1 << 12
	maxWidth      = 1 << 20 // hidden and intermediate sizes, heads, vocabulary
	maxPositions  = 1 << 20
	maxImageSize  = 1 << 14
	maxInChannels = 64
)

// Config is a CogVLM config.json. The json tags are the exact keys of THUDM's file; keys
// that inference does not need (auto_map, initializer_range, use_cache, ...) are ignored.
type Config struct {
	Architectures         []string     `json:"architectures"`
	BOSTokenID            int          `json:"bos_token_id"`
	EOSTokenID            int          `json:"eos_token_id"`
	PadTokenID            int          `json:"pad_token_id"`
	HiddenAct             string       `json:"hidden_act"`
	HiddenSize            int          `json:"hidden_size"`       // H
	IntermediateSize      int          `json:"intermediate_size"` // I
	MaxPositionEmbeddings int          `json:"max_position_embeddings"`
	NumAttentionHeads     int          `json:"num_attention_heads"`
	NumHiddenLayers       int          `json:"num_hidden_layers"`
	RMSNormEps            float64      `json:"rms_norm_eps"`
	TemplateVersion       string       `json:"template_version"`
	TieWordEmbeddings     bool         `json:"tie_word_embeddings"`
	TorchDtype            string       `json:"torch_dtype"`
	VocabSize             int          `json:"vocab_size"` // V
	Vision                VisionConfig `json:"vision_config"`
}

// VisionConfig is config.json's "vision_config" (the EVA2-CLIP tower). THUDM's files say
// num_heads, in_channels and num_positions; the Hugging Face port also writes
// num_attention_heads and num_channels, which UnmarshalJSON accepts as aliases.
type VisionConfig struct {
	DropoutProb      float64 `json:"dropout_prob"`
	HiddenAct        string  `json:"hidden_act"`
	HiddenSize       int     `json:"hidden_size"`       // D
	ImageSize        int     `json:"image_size"`        // S
	InChannels       int     `json:"in_channels"`       // C
	IntermediateSize int     `json:"intermediate_size"` // F
	LayerNormEps     float64 `json:"layer_norm_eps"`
	NumHeads         int     `json:"num_heads"`
	NumHiddenLayers  int     `json:"num_hidden_layers"`
	NumPositions     int     `json:"num_positions"` // N = grid² + 1 (the cls token)
	PatchSize        int     `json:"patch_size"`    // p
}

// UnmarshalJSON reads vision_config with both spellings of the renamed keys. When both
// spellings are present they must agree, so a hand-edited file cannot silently mean two
// different models.
func (v *VisionConfig) UnmarshalJSON(data []byte) error {
	type plain VisionConfig // no methods: avoids recursing into UnmarshalJSON
	var aux struct {
		plain
		NumHeads          *int `json:"num_heads"`
		NumAttentionHeads *int `json:"num_attention_heads"`
		InChannels        *int `json:"in_channels"`
		NumChannels       *int `json:"num_channels"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*v = VisionConfig(aux.plain)
	var err error
	if v.NumHeads, err = alias("num_heads", aux.NumHeads, "num_attention_heads", aux.NumAttentionHeads); err != nil {
		return err
	}
	if v.InChannels, err = alias("in_channels", aux.InChannels, "num_channels", aux.NumChannels); err != nil {
		return err
	}
	return nil
}

// alias merges a THUDM key and its Hugging Face alias (0 when both are absent).
func alias(key string, val *int, aliasKey string, aliasVal *int) (int, error) {
	switch {
	case val != nil && aliasVal != nil && *val != *aliasVal:
		return 0, fmt.Errorf("vision_config.%s %d disagrees with vision_config.%s %d", key, *val, aliasKey, *aliasVal)
	case val != nil:
		return *val, nil
	case aliasVal != nil:
		return *aliasVal, nil
	}
	return 0, nil
}

// LoadConfig reads and validates a config.json.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(data, path)
}

// ParseConfig decodes and validates the bytes of a config.json; path names it in
// messages (the browser's converter reads it from the hub).
func ParseConfig(data []byte, path string) (Config, error) {
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("%s: %v", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %v", path, err)
	}
	return cfg, nil
}

// Validate checks what the forward pass relies on and names the key at fault.
func (c Config) Validate() error {
	if len(c.Architectures) > 0 && !slices.Contains(c.Architectures, Architecture) {
		return fmt.Errorf("architectures %q does not contain %q", c.Architectures, Architecture)
	}
	// Every count and size must be positive and within a bound far above any CogVLM and
	// far below what would exhaust memory: the weights, the KV cache and the image buffers
	// are allocated from these numbers.
	bounded := []struct {
		key      string
		val, max int
	}{
		{"hidden_size", c.HiddenSize, maxWidth},
		{"intermediate_size", c.IntermediateSize, maxWidth},
		{"num_attention_heads", c.NumAttentionHeads, maxWidth},
		{"num_hidden_layers", c.NumHiddenLayers, maxLayers},
		{"vocab_size", c.VocabSize, maxWidth},
		{"max_position_embeddings", c.MaxPositionEmbeddings, maxPositions},
		{"vision_config.hidden_size", c.Vision.HiddenSize, maxWidth},
		{"vision_config.image_size", c.Vision.ImageSize, maxImageSize},
		{"vision_config.in_channels", c.Vision.InChannels, maxInChannels},
		{"vision_config.intermediate_size", c.Vision.IntermediateSize, maxWidth},
		{"vision_config.num_heads", c.Vision.NumHeads, maxWidth},
		{"vision_config.num_hidden_layers", c.Vision.NumHiddenLayers, maxLayers},
		{"vision_config.num_positions", c.Vision.NumPositions, maxImageSize * maxImageSize},
		{"vision_config.patch_size", c.Vision.PatchSize, maxImageSize},
	}
	for _, p := range bounded {
		if p.val <= 0 {
			return fmt.Errorf("%s %d must be positive", p.key, p.val)
		}
		if p.val > p.max {
			return fmt.Errorf("%s %d is beyond the limit %d", p.key, p.val, p.max)
		}
	}
	// Written as !(x > 0) so that NaN is refused too.
	if !(c.RMSNormEps > 0) {
		return fmt.Errorf("rms_norm_eps %v must be positive", c.RMSNormEps)
	}
	if !(c.Vision.LayerNormEps > 0) {
		return fmt.Errorf("vision_config.layer_norm_eps %v must be positive", c.Vision.LayerNormEps)
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
	}
	if c.HeadDim()%2 != 0 {
		return fmt.Errorf("head_dim %d (hidden_size %d / num_attention_heads %d) must be even for rotary embeddings",
			c.HeadDim(), c.HiddenSize, c.NumAttentionHeads)
	}
	if c.Vision.HiddenSize%c.Vision.NumHeads != 0 {
		return fmt.Errorf("vision_config.hidden_size %d is not a multiple of vision_config.num_heads %d",
			c.Vision.HiddenSize, c.Vision.NumHeads)
	}
	if c.Vision.ImageSize%c.Vision.PatchSize != 0 {
		return fmt.Errorf("vision_config.image_size %d is not a multiple of vision_config.patch_size %d",
			c.Vision.ImageSize, c.Vision.PatchSize)
	}
	if g := c.VisionGrid(); c.Vision.NumPositions != g*g+1 {
		return fmt.Errorf("vision_config.num_positions %d must be (image_size/patch_size)²+1 = %d",
			c.Vision.NumPositions, g*g+1)
	}
	for _, t := range []struct {
		key string
		id  int
	}{{"bos_token_id", c.BOSTokenID}, {"eos_token_id", c.EOSTokenID}, {"pad_token_id", c.PadTokenID}} {
		if t.id < 0 || t.id >= c.VocabSize {
			return fmt.Errorf("%s %d is outside the vocabulary [0, %d)", t.key, t.id, c.VocabSize)
		}
	}
	// CogVLM ships an untied lm_head; a tied one would need a different weight list.
	if c.TieWordEmbeddings {
		return fmt.Errorf("tie_word_embeddings true is not supported: CogVLM has its own lm_head.weight")
	}
	if c.HiddenAct != "" && c.HiddenAct != "silu" {
		return fmt.Errorf("hidden_act %q is not supported (CogVLM's language MLP uses \"silu\")", c.HiddenAct)
	}
	if c.Vision.HiddenAct != "" && c.Vision.HiddenAct != "gelu" {
		return fmt.Errorf("vision_config.hidden_act %q is not supported (EVA2-CLIP uses exact \"gelu\")", c.Vision.HiddenAct)
	}
	return nil
}

// HeadDim is the language model's per-head width (hidden_size / num_attention_heads).
func (c Config) HeadDim() int { return c.HiddenSize / c.NumAttentionHeads }

// HeadDim is the vision tower's per-head width (hidden_size / num_heads).
func (v VisionConfig) HeadDim() int { return v.HiddenSize / v.NumHeads }

// VisionGrid is the number of patches along one side of the image (image_size / patch_size).
func (c Config) VisionGrid() int { return c.Vision.ImageSize / c.Vision.PatchSize }

// NumPatches is the number of patch tokens of one image (grid²).
func (c Config) NumPatches() int { g := c.VisionGrid(); return g * g }

// NumImageTokens is the number of decoder tokens one image takes: boi, the patches, eoi.
func (c Config) NumImageTokens() int { return c.NumPatches() + 2 }

// PixelCount is the length of one image's pixel_values (C×S×S, CHW).
func (c Config) PixelCount() int {
	return c.Vision.InChannels * c.Vision.ImageSize * c.Vision.ImageSize
}
