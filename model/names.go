package model

import (
	"strconv"
	"strings"
)

// The Hugging Face names of CogVLM's tensors, as THUDM/cogvlm-chat-hf publishes them,
// written once: the CPU reference's weight loading (Weights), its calibration hooks
// (LinearObserver), the converter's policy and the GPU engine all name tensors through
// here. The structs of names mirror the weight structs field for field.

// Tensors outside the layers.
const (
	EmbedTokensName = "model.embed_tokens.weight" // [V, H]
	NormName        = "model.norm.weight"         // [H] final RMSNorm
	LMHeadName      = "lm_head.weight"            // [V, H]

	// VisionPrefix starts the name of every tensor of the vision tower and the adapter.
	VisionPrefix = "model.vision."

	VisionPatchWeightName       = "model.vision.patch_embedding.proj.weight" // [D, C, P, P] Conv2d
	VisionPatchBiasName         = "model.vision.patch_embedding.proj.bias"   // [D]
	VisionClsEmbeddingName      = "model.vision.patch_embedding.cls_embedding"
	VisionPositionEmbeddingName = "model.vision.patch_embedding.position_embedding.weight"

	AdapterLinearProjName  = "model.vision.linear_proj.linear_proj.weight"
	AdapterNorm1WeightName = "model.vision.linear_proj.norm1.weight"
	AdapterNorm1BiasName   = "model.vision.linear_proj.norm1.bias"
	AdapterGateProjName    = "model.vision.linear_proj.gate_proj.weight"
	AdapterDenseHTo4HName  = "model.vision.linear_proj.dense_h_to_4h.weight"
	AdapterDense4HToHName  = "model.vision.linear_proj.dense_4h_to_h.weight"
	BOIName                = "model.vision.boi"
	EOIName                = "model.vision.eoi"
)

// Prefixes of the per-layer tensors: layer l's names start with the prefix, l and a dot.
const (
	DecoderLayerPrefix = "model.layers."
	VisionLayerPrefix  = "model.vision.transformer.layers."
)

// LayerOf is the layer number of a per-layer tensor's name under prefix
// (DecoderLayerPrefix or VisionLayerPrefix): 7 for "model.layers.7.input_layernorm.weight".
func LayerOf(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, ".")
	l, err := strconv.Atoi(num)
	if !ok || err != nil || l < 0 {
		return 0, false
	}
	return l, true
}

// LayerNames are the names of one decoder layer's tensors, field for field as
// DecoderLayer holds them.
type LayerNames struct {
	InputLayernorm, PostAttentionLayernorm string
	Vision, Language                       ExpertNames
}

// ExpertNames are the names of one expert's weights in a decoder layer, in the order of
// Expert's fields.
type ExpertNames struct {
	QueryKeyValue, Dense, GateProj, UpProj, DownProj string
}

// rotaryInvFreqSuffix ends the name of the rotary buffer the published checkpoints save
// per decoder layer, after the prefix and the layer number (rotary.go: RotaryInvFreqName).
const rotaryInvFreqSuffix = ".self_attn.rotary_emb.inv_freq"

// LayerTensorNames are decoder layer l's tensor names.
func LayerTensorNames(l int) LayerNames {
	p := DecoderLayerPrefix + strconv.Itoa(l) + "."
	return LayerNames{
		InputLayernorm:         p + "input_layernorm.weight",
		PostAttentionLayernorm: p + "post_attention_layernorm.weight",
		Vision: ExpertNames{
			QueryKeyValue: p + "self_attn.vision_expert_query_key_value.weight",
			Dense:         p + "self_attn.vision_expert_dense.weight",
			GateProj:      p + "mlp.vision_mlp.gate_proj.weight",
			UpProj:        p + "mlp.vision_mlp.up_proj.weight",
			DownProj:      p + "mlp.vision_mlp.down_proj.weight",
		},
		Language: ExpertNames{
			QueryKeyValue: p + "self_attn.language_expert_query_key_value.weight",
			Dense:         p + "self_attn.language_expert_dense.weight",
			GateProj:      p + "mlp.language_mlp.gate_proj.weight",
			UpProj:        p + "mlp.language_mlp.up_proj.weight",
			DownProj:      p + "mlp.language_mlp.down_proj.weight",
		},
	}
}

// Expert is the names of the vision expert's (vision true) or the language expert's
// weights.
func (n LayerNames) Expert(vision bool) ExpertNames {
	if vision {
		return n.Vision
	}
	return n.Language
}

// VisionLayerNames are the names of one EVA2-CLIP layer's tensors, field for field as
// VisionLayer holds them.
type VisionLayerNames struct {
	InputLayernormWeight, InputLayernormBias                 string
	QueryKeyValueWeight, QueryKeyValueBias                   string
	DenseWeight, DenseBias                                   string
	PostAttentionLayernormWeight, PostAttentionLayernormBias string
	FC1Weight, FC1Bias                                       string
	FC2Weight, FC2Bias                                       string
}

// VisionLayerTensorNames are vision layer l's tensor names.
func VisionLayerTensorNames(l int) VisionLayerNames {
	p := VisionLayerPrefix + strconv.Itoa(l) + "."
	return VisionLayerNames{
		InputLayernormWeight:         p + "input_layernorm.weight",
		InputLayernormBias:           p + "input_layernorm.bias",
		QueryKeyValueWeight:          p + "attention.query_key_value.weight",
		QueryKeyValueBias:            p + "attention.query_key_value.bias",
		DenseWeight:                  p + "attention.dense.weight",
		DenseBias:                    p + "attention.dense.bias",
		PostAttentionLayernormWeight: p + "post_attention_layernorm.weight",
		PostAttentionLayernormBias:   p + "post_attention_layernorm.bias",
		FC1Weight:                    p + "mlp.fc1.weight",
		FC1Bias:                      p + "mlp.fc1.bias",
		FC2Weight:                    p + "mlp.fc2.weight",
		FC2Bias:                      p + "mlp.fc2.bias",
	}
}
