package model

import "fmt"

// LinearObserver sees the input of a Linear layer each time the model runs one: weight is
// the Hugging Face name of the layer's [out, in] weight, x its input rows [rows, k] (k the
// weight's in dimension), a view of the model's buffers that is valid during the call
// only. A fused query_key_value (three MatMuls over one input) is seen once. A decoder
// layer's experts are seen once per run of rows (ExpertRuns), each with its own weight's
// name, so one expert's rows never reach the other's weight. The patch-embedding
// convolution (as its [D, C·P·P] matmul over Patches) and lm_head (on the one row it
// runs on) are seen too.
//
// Calibration (activation-aware quantization in pkg.Convert) sets Model.ObserveLinear;
// nil, the default, costs one comparison per Linear and leaves the numerics unchanged.
type LinearObserver func(weight string, x []float32, rows, k int)

// Hugging Face names of the observed weights; %d is the layer index. They match the hf
// tags of Weights (TestObserveLinear checks).
const (
	nameVisionPatch = "model.vision.patch_embedding.proj.weight"
	nameVisionQKV   = "model.vision.transformer.layers.%d.attention.query_key_value.weight"
	nameVisionDense = "model.vision.transformer.layers.%d.attention.dense.weight"
	nameVisionFC1   = "model.vision.transformer.layers.%d.mlp.fc1.weight"
	nameVisionFC2   = "model.vision.transformer.layers.%d.mlp.fc2.weight"

	nameAdapterProj = "model.vision.linear_proj.linear_proj.weight"
	nameAdapterGate = "model.vision.linear_proj.gate_proj.weight"
	nameAdapterUp   = "model.vision.linear_proj.dense_h_to_4h.weight"
	nameAdapterDown = "model.vision.linear_proj.dense_4h_to_h.weight"

	nameLMHead = "lm_head.weight"
)

// expertNames are the names of one expert's decoder weights, in the order of Expert's
// fields.
type expertNames struct{ qkv, dense, gate, up, down string }

var (
	languageExpertNames = expertNames{
		"model.layers.%d.self_attn.language_expert_query_key_value.weight",
		"model.layers.%d.self_attn.language_expert_dense.weight",
		"model.layers.%d.mlp.language_mlp.gate_proj.weight",
		"model.layers.%d.mlp.language_mlp.up_proj.weight",
		"model.layers.%d.mlp.language_mlp.down_proj.weight",
	}
	visionExpertNames = expertNames{
		"model.layers.%d.self_attn.vision_expert_query_key_value.weight",
		"model.layers.%d.self_attn.vision_expert_dense.weight",
		"model.layers.%d.mlp.vision_mlp.gate_proj.weight",
		"model.layers.%d.mlp.vision_mlp.up_proj.weight",
		"model.layers.%d.mlp.vision_mlp.down_proj.weight",
	}
)

// see reports x [rows, k] as the input of the weight named by format (with layer
// substituted where format has a %d); a nil observer does nothing.
func (o LinearObserver) see(format string, layer int, x []float32, rows, k int) {
	if o == nil {
		return
	}
	name := format
	if layer >= 0 {
		name = fmt.Sprintf(format, layer)
	}
	o(name, x[:rows*k], rows, k)
}

// expertName is the names of the vision (true) or language expert's weights.
func expertName(vision bool) *expertNames {
	if vision {
		return &visionExpertNames
	}
	return &languageExpertNames
}
