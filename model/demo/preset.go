package demo

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

// Preset is a published CogVLM v1 checkpoint whose layout demo-model reproduces with
// random weights.
type Preset struct {
	Name       string       // the CLI's --preset
	NameOrPath string       // config.json's "_name_or_path" as published
	Config     model.Config // at full depth
}

// TinyPreset is the name of the embedded demo (Config, Write).
const TinyPreset = "tiny"

// presets are THUDM's four v1 Hugging Face checkpoints. Their config.json files differ
// only in _name_or_path, template_version and (base-224) image_size/num_positions; the
// weights have the same names, shapes and shard split (8 files).
var presets = []Preset{
	{"cogvlm-chat-hf", "cogvlm-chat-v1.1", realConfig("chat", 490)},
	{"cogvlm-base-490-hf", "cogvlm-base-490", realConfig("base", 490)},
	{"cogvlm-base-224-hf", "cogvlm-base-224", realConfig("base", 224)},
	{"cogvlm-grounding-generalist-hf", "cogvlm-grounding-generalist", realConfig("base", 490)},
}

// realConfig is CogVLM-17B's config.json: Vicuna-7B-v1.5 with visual experts and the
// EVA2-CLIP-E tower at imageSize.
func realConfig(template string, imageSize int) model.Config {
	grid := imageSize / 14
	return model.Config{
		Architectures: []string{model.Architecture}, BOSTokenID: 1, EOSTokenID: 2, PadTokenID: 0,
		HiddenAct: "silu", HiddenSize: 4096, IntermediateSize: 11008, MaxPositionEmbeddings: 2048,
		NumAttentionHeads: 32, NumHiddenLayers: 32, RMSNormEps: 1e-5, TemplateVersion: template,
		TorchDtype: "bfloat16", VocabSize: 32000,
		Vision: model.VisionConfig{
			HiddenAct: "gelu", HiddenSize: 1792, ImageSize: imageSize, InChannels: 3,
			IntermediateSize: 15360, LayerNormEps: 1e-6, NumHeads: 16, NumHiddenLayers: 63,
			NumPositions: grid*grid + 1, PatchSize: 14,
		},
	}
}

// PresetNames lists the presets, tiny first.
func PresetNames() []string {
	names := []string{TinyPreset}
	for _, p := range presets {
		names = append(names, p.Name)
	}
	return names
}

// LookupPreset finds a published preset by name (not tiny).
func LookupPreset(name string) (Preset, error) {
	for _, p := range presets {
		if p.Name == name {
			return p, nil
		}
	}
	return Preset{}, fmt.Errorf("unknown preset %q (have %s)", name, strings.Join(PresetNames(), ", "))
}

// Options chooses the checkpoint Generate writes.
type Options struct {
	Preset       string // "" is tiny
	Layers       int    // decoder layers; 0 keeps the preset's
	VisionLayers int    // vision tower layers; 0 keeps the preset's
	// Progress, when set, is called with the tensor bytes written so far and the total.
	Progress func(done, total int64)
}

// maxTinyLayers bounds the layer counts of tiny, whose published count is not a limit.
const maxTinyLayers = 64

// config is the model opts describe, and the preset (nil for tiny).
func (o Options) config() (model.Config, *Preset, error) {
	cfg, limit, limitV := Config, maxTinyLayers, maxTinyLayers
	var preset *Preset
	if o.Preset != "" && o.Preset != TinyPreset {
		p, err := LookupPreset(o.Preset)
		if err != nil {
			return model.Config{}, nil, err
		}
		preset, cfg = &p, p.Config
		// the published layout has no layer past these
		limit, limitV = cfg.NumHiddenLayers, cfg.Vision.NumHiddenLayers
	}
	for _, l := range []struct {
		what     string
		val, max int
		dst      *int
	}{{"layers", o.Layers, limit, &cfg.NumHiddenLayers}, {"vision layers", o.VisionLayers, limitV, &cfg.Vision.NumHiddenLayers}} {
		if l.val < 0 || l.val > l.max {
			return model.Config{}, nil, fmt.Errorf("%s %d out of range 1…%d", l.what, l.val, l.max)
		}
		if l.val > 0 {
			*l.dst = l.val
		}
	}
	return cfg, preset, nil
}

// publishedShardBytes is the max_shard_size THUDM saved with (save_pretrained's "5GB",
// in decimal bytes): with it transformers' greedy split gives the published 8 files of
// 4.94, 4.95, 4.95, 4.99, 4.99, 4.97, 4.96 GB and 533 MB.
const publishedShardBytes = 5e9

// Plan is the checkpoint of a published preset, before a byte is drawn: every tensor in
// the order of the original model's state_dict, with its shard.
type Plan struct {
	Preset    Preset
	Config    model.Config // with the layer counts asked for
	Tensors   []PlannedTensor
	Shards    []string // file names, model-0000i-of-0000n.safetensors
	TotalSize int64    // bytes of tensor data (the index's metadata.total_size)
}

// PlannedTensor is one tensor of a Plan.
type PlannedTensor struct {
	model.TensorSpec
	DType safetensors.DType
	Shard int // index into Plan.Shards
}

// Bytes is the tensor's data size.
func (t PlannedTensor) Bytes() int64 {
	n := int64(t.DType.Size())
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// NewPlan plans a published preset's checkpoint (tiny has no plan: Write).
func NewPlan(opts Options) (*Plan, error) {
	cfg, preset, err := opts.config()
	if err != nil {
		return nil, err
	}
	if preset == nil {
		return nil, fmt.Errorf("preset %q is not a published layout", TinyPreset)
	}
	return newPlan(*preset, cfg)
}

// newPlan plans preset's layout for cfg (the preset's config, perhaps with fewer layers).
func newPlan(preset Preset, cfg model.Config) (*Plan, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Plan{Preset: preset, Config: cfg}
	for _, s := range stateDict(cfg) {
		p.Tensors = append(p.Tensors, PlannedTensor{TensorSpec: s, DType: safetensors.BF16})
	}
	for _, t := range p.Tensors {
		p.TotalSize += t.Bytes()
	}
	// At full depth the published split; with fewer layers the same split scaled down,
	// so a smaller checkpoint keeps about as many shards.
	full := int64(0)
	for _, s := range stateDict(preset.Config) {
		full += PlannedTensor{TensorSpec: s, DType: safetensors.BF16}.Bytes()
	}
	maxShard := int64(publishedShardBytes)
	if p.TotalSize != full {
		maxShard = int64(math.Ceil(float64(p.TotalSize) / float64(full) * publishedShardBytes))
	}
	n := splitShards(p.Tensors, maxShard)
	for i := range n {
		p.Shards = append(p.Shards, fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, n))
	}
	return p, nil
}

// splitShards is transformers' shard_checkpoint (4.35): tensors in order, a new shard
// whenever the next tensor would take the current one past maxShard bytes (a tensor
// larger than maxShard gets a shard of its own). It sets each tensor's Shard and returns
// the number of shards.
func splitShards(tensors []PlannedTensor, maxShard int64) int {
	shard, size := 0, int64(0)
	for i := range tensors {
		b := tensors[i].Bytes()
		if size+b > maxShard && size > 0 {
			shard, size = shard+1, 0
		}
		tensors[i].Shard = shard
		size += b
	}
	return shard + 1
}

// stateDict lists the published checkpoint's tensors in the order of CogVLMForCausalLM's
// state_dict (modeling_cogvlm.py, visual.py, util.py): a module's own parameters and
// buffers before its children, children in the order __init__ assigns them. The set is
// model.TensorSpecs plus the per-layer rotary inv_freq buffers.
func stateDict(cfg model.Config) []model.TensorSpec {
	H, I, V := cfg.HiddenSize, cfg.IntermediateSize, cfg.VocabSize
	vc := cfg.Vision
	D, F, P, C := vc.HiddenSize, vc.IntermediateSize, vc.PatchSize, vc.InChannels
	var out []model.TensorSpec
	add := func(name string, shape ...int) { out = append(out, model.TensorSpec{Name: name, Shape: shape}) }
	add(model.EmbedTokensName, V, H)
	for l := range cfg.NumHiddenLayers {
		n := model.LayerTensorNames(l)
		// VisionExpertAttention: rotary_emb (FastRotaryEmbedding's inv_freq buffer), then
		// the experts' projections
		add(model.RotaryInvFreqName(l), cfg.HeadDim()/2)
		add(n.Vision.QueryKeyValue, 3*H, H)
		add(n.Vision.Dense, H, H)
		add(n.Language.QueryKeyValue, 3*H, H)
		add(n.Language.Dense, H, H)
		for _, e := range []model.ExpertNames{n.Language, n.Vision} {
			add(e.GateProj, I, H)
			add(e.UpProj, I, H)
			add(e.DownProj, H, I)
		}
		add(n.InputLayernorm, H)
		add(n.PostAttentionLayernorm, H)
	}
	add(model.NormName, H)
	// EVA2CLIPModel: its parameters boi and eoi, then patch_embedding (cls_embedding, then
	// proj and position_embedding), transformer, linear_proj (the GLU adapter)
	add(model.BOIName, 1, 1, H)
	add(model.EOIName, 1, 1, H)
	add(model.VisionClsEmbeddingName, 1, D)
	add(model.VisionPatchWeightName, D, C, P, P)
	add(model.VisionPatchBiasName, D)
	add(model.VisionPositionEmbeddingName, vc.NumPositions, D)
	for l := range vc.NumHiddenLayers {
		n := model.VisionLayerTensorNames(l)
		add(n.InputLayernormWeight, D)
		add(n.InputLayernormBias, D)
		add(n.QueryKeyValueWeight, 3*D, D)
		add(n.QueryKeyValueBias, 3*D)
		add(n.DenseWeight, D, D)
		add(n.DenseBias, D)
		add(n.FC1Weight, F, D)
		add(n.FC1Bias, F)
		add(n.FC2Weight, D, F)
		add(n.FC2Bias, D)
		add(n.PostAttentionLayernormWeight, D)
		add(n.PostAttentionLayernormBias, D)
	}
	add(model.AdapterLinearProjName, H, D)
	add(model.AdapterNorm1WeightName, H)
	add(model.AdapterNorm1BiasName, H)
	add(model.AdapterDenseHTo4HName, I, H)
	add(model.AdapterGateProjName, I, H)
	add(model.AdapterDense4HToHName, H, I)
	add(model.LMHeadName, V, H)
	return out
}

// WeightMap is the index's weight_map: tensor name → shard file.
func (p *Plan) WeightMap() map[string]string {
	m := make(map[string]string, len(p.Tensors))
	for _, t := range p.Tensors {
		m[t.Name] = p.Shards[t.Shard]
	}
	return m
}

// shardTensors lists shard i's tensors (indexes into p.Tensors) in the order their data
// lies in the file: by name, as the safetensors library writes tensors of one dtype.
func (p *Plan) shardTensors(i int) []int {
	var idx []int
	for j, t := range p.Tensors {
		if t.Shard == i {
			idx = append(idx, j)
		}
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(p.Tensors[a].Name, p.Tensors[b].Name) })
	return idx
}

// ConfigJSON is the preset's config.json byte for byte as published (transformers'
// to_json_string: keys sorted, two-space indent, Python's float spelling), with the
// layer counts of the plan.
func (p *Plan) ConfigJSON() []byte {
	c, v := p.Config, p.Config.Vision
	return []byte(fmt.Sprintf(`{
  "_name_or_path": %q,
  "architectures": [
    %q
  ],
  "auto_map": {
    "AutoConfig": "configuration_cogvlm.CogVLMConfig",
    "AutoModelForCausalLM": "modeling_cogvlm.CogVLMForCausalLM"
  },
  "bos_token_id": %d,
  "eos_token_id": %d,
  "hidden_act": %q,
  "hidden_size": %d,
  "initializer_range": 0.02,
  "intermediate_size": %d,
  "max_position_embeddings": %d,
  "num_attention_heads": %d,
  "num_hidden_layers": %d,
  "pad_token_id": %d,
  "rms_norm_eps": %s,
  "template_version": %q,
  "tie_word_embeddings": %t,
  "torch_dtype": %q,
  "transformers_version": "4.35.0",
  "use_cache": true,
  "vision_config": {
    "dropout_prob": %s,
    "hidden_act": %q,
    "hidden_size": %d,
    "image_size": %d,
    "in_channels": %d,
    "intermediate_size": %d,
    "layer_norm_eps": %s,
    "num_heads": %d,
    "num_hidden_layers": %d,
    "num_positions": %d,
    "patch_size": %d
  },
  "vocab_size": %d
}
`, p.Preset.NameOrPath, c.Architectures[0], c.BOSTokenID, c.EOSTokenID, c.HiddenAct, c.HiddenSize,
		c.IntermediateSize, c.MaxPositionEmbeddings, c.NumAttentionHeads, c.NumHiddenLayers, c.PadTokenID,
		pyFloat(c.RMSNormEps), c.TemplateVersion, c.TieWordEmbeddings, c.TorchDtype,
		pyFloat(v.DropoutProb), v.HiddenAct, v.HiddenSize, v.ImageSize, v.InChannels, v.IntermediateSize,
		pyFloat(v.LayerNormEps), v.NumHeads, v.NumHiddenLayers, v.NumPositions, v.PatchSize, c.VocabSize))
}

// pyFloat spells x as Python's repr does for the values a config holds: "0.0", "0.02",
// "1e-05" (exponent form below 1e-4, two exponent digits at least).
func pyFloat(x float64) string {
	if x != 0 && math.Abs(x) < 1e-4 {
		return fmt.Sprintf("%g", x) // 1e-05
	}
	s := fmt.Sprintf("%v", x)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}
