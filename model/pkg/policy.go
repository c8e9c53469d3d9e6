package pkg

import (
	"strings"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// Policy picks the encoding of a tensor from its Hugging Face name and shape. A policy
// may return q4 or q8 only for 2-D [n, k] tensors.
type Policy func(name string, shape []int) quant.Encoding

// VocabEncoding is the encoding DefaultPolicy gives the token embedding and lm_head when
// the large matrices are q4. FORMAT.md has the measurements behind the choice.
const VocabEncoding = quant.Q8

// DefaultPolicy encodes the large matrices (every Linear weight of both experts, the
// vision encoder and the adapter) in large; the token embedding and lm_head in
// VocabEncoding when large is q4 (else in large); 1-D and other vector-like tensors
// (norms, biases, boi, eoi, cls) in f32, a few KB each; and the remaining tables (position
// embedding, patch-embedding convolution, whose K = 3·p·p is no multiple of a group) in
// f16, or f32 when large is f32.
func DefaultPolicy(large quant.Encoding) Policy {
	return func(name string, shape []int) quant.Encoding {
		switch {
		case name == model.EmbedTokensName || name == model.LMHeadName:
			if large == quant.Q4 {
				return VocabEncoding
			}
			return large
		case isLinearWeight(name, shape):
			return large
		case isVector(shape) || large == quant.F32:
			return quant.F32
		}
		return quant.F16
	}
}

// isLinearWeight reports whether a tensor is a Linear layer's [out, in] weight: every 2-D
// ".weight" of CogVLM except the vision position embedding, which is a table of rows
// (the strict tensor-list check rules out any other name).
func isLinearWeight(name string, shape []int) bool {
	return len(shape) == 2 && strings.HasSuffix(name, ".weight") && name != model.VisionPositionEmbeddingName
}

// isVector reports whether at most one dimension exceeds 1 (boi/eoi are [1, 1, H]).
func isVector(shape []int) bool {
	big := 0
	for _, d := range shape {
		if d > 1 {
			big++
		}
	}
	return big <= 1
}
