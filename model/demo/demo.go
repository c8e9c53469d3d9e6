// Package demo writes deterministic CogVLM checkpoints with random weights. The tiny one
// is what the app ships as its embedded default: the Hugging Face layout of THUDM's
// cogvlm-chat-hf (config.json, sharded BF16 safetensors with an index, tokenizer files)
// with the real 32000-piece LLaMA tokenizer; it answers with nonsense, but it exercises
// every code path of the real model (vision tower, adapter, both experts) in a few MB.
// The published presets (PresetNames) are THUDM's four v1 checkpoints at real widths, in
// their exact published layout (Plan), streamed to disk.
package demo

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
)

// tokenizerModel is vicuna-7b-v1.5's tokenizer.model (the LLaMA SentencePiece BPE), the
// same file as testdata/golden/tokenizer/tokenizer.model.
//
//go:embed tokenizer.model
var tokenizerModel []byte

// Seed of the weight generator. Changing it (or Config) changes every byte of the
// checkpoint, and so the app's embedded package.
const Seed = 20240601

// Config is the demo model: the golden tiny model's language side (hidden 64, 2 layers,
// the full 32000 vocabulary) with a 56×56 image (a 4×4 grid, 16 patches) so that the app
// shows a real image model.
var Config = model.Config{
	Architectures:         []string{model.Architecture},
	BOSTokenID:            1,
	EOSTokenID:            2,
	PadTokenID:            0,
	HiddenAct:             "silu",
	HiddenSize:            64,
	IntermediateSize:      176,
	MaxPositionEmbeddings: 2048,
	NumAttentionHeads:     4,
	NumHiddenLayers:       2,
	RMSNormEps:            1e-5,
	TemplateVersion:       "chat",
	TorchDtype:            "bfloat16",
	VocabSize:             32000,
	Vision: model.VisionConfig{
		HiddenAct:        "gelu",
		HiddenSize:       64,
		ImageSize:        56,
		InChannels:       3,
		IntermediateSize: 256,
		LayerNormEps:     1e-6,
		NumHeads:         4,
		NumHiddenLayers:  2,
		NumPositions:     17,
		PatchSize:        14,
	},
}

// numShards splits the weights like a real checkpoint, so that every reader of the demo
// goes through model.safetensors.index.json.
const numShards = 2

// Write creates dir holding the demo checkpoint: Generate with the tiny preset.
func Write(dir string) error { return Generate(dir, Options{}) }

// Generate creates dir holding the checkpoint opts describes: tiny (the default), or a
// published preset's layout at real widths (NewPlan), streamed. The folder appears
// complete or not at all: everything is written to a temporary sibling that is renamed at
// the end. dir must not exist or be empty.
func Generate(dir string, opts Options) (err error) {
	cfg, preset, err := opts.config()
	if err != nil {
		return err
	}
	fill := func(tmp string) error { return writeTiny(tmp, cfg) }
	if preset != nil {
		plan, err := NewPlan(opts)
		if err != nil {
			return err
		}
		fill = func(tmp string) error { return plan.write(tmp, opts.Progress) }
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s: folder exists and is not empty", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(filepath.Clean(dir))+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		return err
	}
	// rename(2) replaces an empty folder on Unix but not on Windows: remove it first.
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(tmp, dir)
}

// writeTiny writes the tiny checkpoint of cfg (Config, or it with other layer counts).
func writeTiny(dir string, cfg model.Config) error {
	if err := writeJSON(filepath.Join(dir, "config.json"), configJSON(cfg)); err != nil {
		return err
	}
	if err := writeCommonFiles(dir); err != nil {
		return err
	}
	tensors, err := Weights(cfg, Seed)
	if err != nil {
		return err
	}
	return writeShards(dir, tensors)
}

// writeCommonFiles writes what every preset shares: generation_config.json and the
// tokenizer (vicuna-7b-v1.5's tokenizer.model, tokenizer.json made from it, and its
// tokenizer_config.json and special_tokens_map.json).
func writeCommonFiles(dir string) error {
	for name, content := range map[string]any{
		"generation_config.json":  generationConfig,
		"tokenizer_config.json":   tokenizerConfig,
		"special_tokens_map.json": specialTokensMap,
	} {
		if err := writeJSON(filepath.Join(dir, name), content); err != nil {
			return err
		}
	}
	tokModel := filepath.Join(dir, "tokenizer.model")
	if err := writeFile(tokModel, tokenizerModel); err != nil {
		return err
	}
	// tokenizer.json too, for readers that only know the Hugging Face form.
	tok, err := tokenizer.LoadModel(tokModel)
	if err != nil {
		return fmt.Errorf("demo: embedded tokenizer.model: %v", err)
	}
	var js bytes.Buffer
	if err := tok.WriteJSON(&js); err != nil {
		return fmt.Errorf("demo: tokenizer.json: %v", err)
	}
	return writeFile(filepath.Join(dir, "tokenizer.json"), js.Bytes())
}

func writeFile(path string, data []byte) error { return os.WriteFile(path, data, 0o644) }

// Weights draws every tensor of cfg's checkpoint, in model.TensorSpecs order, as BF16
// rounded from float32 normal draws of one seeded generator: the recipe of the golden
// tiny models (testdata/golden/README.md, "How they were made").
func Weights(cfg model.Config, seed uint64) ([]safetensors.Tensor, error) {
	specs, err := model.TensorSpecs(cfg)
	if err != nil {
		return nil, err
	}
	rng := newNormal(seed)
	out := make([]safetensors.Tensor, 0, len(specs))
	for _, s := range specs {
		mean, std, err := distribution(s.Name, s.Shape, cfg)
		if err != nil {
			return nil, err
		}
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(mean + std*rng.next())
		}
		out = append(out, safetensors.EncodeFloat32(s.Name, s.Shape, v, safetensors.BF16))
	}
	return out, nil
}

// distribution gives the mean and standard deviation of a tensor's draws. The scales keep
// activations near unit variance through the layers and the logits at a standard deviation
// of about 4, so that greedy decoding picks varied tokens instead of repeating one.
func distribution(name string, shape []int, cfg model.Config) (mean, std float64, err error) {
	fanIn := 1
	for _, d := range shape[1:] {
		fanIn *= d
	}
	switch {
	case name == model.LMHeadName:
		return 0, 4 / math.Sqrt(float64(cfg.HiddenSize)), nil
	case name == model.EmbedTokensName, name == model.BOIName, name == model.EOIName,
		strings.HasSuffix(name, ".cls_embedding"):
		return 0, 1, nil
	case strings.HasSuffix(name, ".position_embedding.weight"):
		return 0, 0.5, nil
	case strings.HasSuffix(name, ".attention.query_key_value.bias"):
		return 0, 0.2, nil
	case strings.HasSuffix(name, ".bias"):
		return 0, 0.1, nil
	case isNorm(name) && len(shape) == 1:
		return 1, 0.2, nil
	case strings.HasSuffix(name, ".weight") && len(shape) >= 2:
		return 0, 1 / math.Sqrt(float64(fanIn)), nil
	}
	return 0, 0, fmt.Errorf("demo: no weight distribution for tensor %q %v", name, shape)
}

func isNorm(name string) bool {
	for _, n := range []string{"layernorm.weight", model.NormName, ".norm1.weight"} {
		if strings.HasSuffix(name, n) {
			return true
		}
	}
	return false
}

// normal draws standard normal values with Box–Muller from a PCG stream. Written out
// rather than rand.NormFloat64 because only the PCG stream itself is specified to stay
// the same across Go releases, and the demo checkpoint's bytes must not change.
type normal struct {
	pcg   *rand.PCG
	spare float64
	has   bool
}

func newNormal(seed uint64) *normal { return &normal{pcg: rand.NewPCG(seed, 0x636f67766c6d)} }

func (r *normal) next() float64 {
	if r.has {
		r.has = false
		return r.spare
	}
	// u1 in (0, 1] so that the logarithm is finite; 53 random bits each.
	u1 := float64(r.pcg.Uint64()>>11+1) / (1 << 53)
	u2 := float64(r.pcg.Uint64()>>11) / (1 << 53)
	radius := math.Sqrt(-2 * math.Log(u1))
	s, c := math.Sincos(2 * math.Pi * u2)
	r.spare, r.has = radius*s, true
	return radius * c
}

// writeShards splits tensors, in order, into numShards files of about equal size (a
// boundary may fall inside a layer, as in real checkpoints) and writes the index.
func writeShards(dir string, tensors []safetensors.Tensor) error {
	var total int64
	for _, t := range tensors {
		total += int64(len(t.Data))
	}
	weightMap := map[string]string{}
	var shard []safetensors.Tensor
	var written int64
	k := 1
	for i, t := range tensors {
		shard = append(shard, t)
		written += int64(len(t.Data))
		last := i == len(tensors)-1
		if !last && (k == numShards || written < total*int64(k)/numShards) {
			continue
		}
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", k, numShards)
		for _, s := range shard {
			weightMap[s.Name] = name
		}
		if err := safetensors.WriteFile(filepath.Join(dir, name), shard, map[string]string{"format": "pt"}); err != nil {
			return err
		}
		shard = nil
		k++
	}
	return writeJSON(filepath.Join(dir, safetensors.IndexFileName), map[string]any{
		"metadata":   map[string]int64{"total_size": total},
		"weight_map": weightMap,
	})
}

// writeJSON writes v indented like the files transformers saves (keys sorted).
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return writeFile(path, append(data, '\n'))
}

// configJSON is cfg as THUDM's config.json, including the keys inference ignores.
func configJSON(cfg model.Config) map[string]any {
	v := cfg.Vision
	return map[string]any{
		"architectures": cfg.Architectures,
		"auto_map": map[string]string{
			"AutoConfig":           "configuration_cogvlm.CogVLMConfig",
			"AutoModelForCausalLM": "modeling_cogvlm.CogVLMForCausalLM",
		},
		"bos_token_id":            cfg.BOSTokenID,
		"eos_token_id":            cfg.EOSTokenID,
		"hidden_act":              cfg.HiddenAct,
		"hidden_size":             cfg.HiddenSize,
		"initializer_range":       0.02,
		"intermediate_size":       cfg.IntermediateSize,
		"max_position_embeddings": cfg.MaxPositionEmbeddings,
		"num_attention_heads":     cfg.NumAttentionHeads,
		"num_hidden_layers":       cfg.NumHiddenLayers,
		"pad_token_id":            cfg.PadTokenID,
		"rms_norm_eps":            cfg.RMSNormEps,
		"template_version":        cfg.TemplateVersion,
		"tie_word_embeddings":     cfg.TieWordEmbeddings,
		"torch_dtype":             cfg.TorchDtype,
		"transformers_version":    "4.35.0",
		"use_cache":               true,
		"vision_config": map[string]any{
			"dropout_prob":      v.DropoutProb,
			"hidden_act":        v.HiddenAct,
			"hidden_size":       v.HiddenSize,
			"image_size":        v.ImageSize,
			"in_channels":       v.InChannels,
			"intermediate_size": v.IntermediateSize,
			"layer_norm_eps":    v.LayerNormEps,
			"num_heads":         v.NumHeads,
			"num_hidden_layers": v.NumHiddenLayers,
			"num_positions":     v.NumPositions,
			"patch_size":        v.PatchSize,
		},
		"vocab_size": cfg.VocabSize,
	}
}

var generationConfig = map[string]any{
	"_from_model_config":   true,
	"bos_token_id":         1,
	"eos_token_id":         2,
	"pad_token_id":         0,
	"transformers_version": "4.35.0",
}

// specialTokensMap and tokenizerConfig are those of vicuna-7b-v1.5 as CogVLM ships them:
// pad is <unk> (id 0).
var specialTokensMap = map[string]string{
	"bos_token": "<s>",
	"eos_token": "</s>",
	"pad_token": "<unk>",
	"unk_token": "<unk>",
}

var tokenizerConfig = map[string]any{
	"add_bos_token": true,
	"add_eos_token": false,
	"added_tokens_decoder": map[string]any{
		"0": addedToken("<unk>"),
		"1": addedToken("<s>"),
		"2": addedToken("</s>"),
	},
	"bos_token":                    "<s>",
	"clean_up_tokenization_spaces": false,
	"eos_token":                    "</s>",
	"legacy":                       true,
	"model_max_length":             2048,
	"pad_token":                    "<unk>",
	"padding_side":                 "right",
	"sp_model_kwargs":              map[string]any{},
	"tokenizer_class":              "LlamaTokenizer",
	"unk_token":                    "<unk>",
}

func addedToken(content string) map[string]any {
	return map[string]any{
		"content": content, "lstrip": false, "normalized": false,
		"rstrip": false, "single_word": false, "special": true,
	}
}
