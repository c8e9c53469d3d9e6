package model

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The published checkpoints save one rotary buffer per decoder layer,
// model.layers.N.self_attn.rotary_emb.inv_freq, of head_dim/2 values: THUDM's util.py
// registers FastRotaryEmbedding's inv_freq as a persistent buffer, so save_pretrained
// writes it (in the checkpoint's dtype, bf16). RoPE is computed from the config
// (RoPEBase), so the buffer carries no information; readers accept it when present,
// check it against what the config implies, and drop it.

// RotaryInvFreqName is the name of decoder layer l's saved rotary buffer.
func RotaryInvFreqName(layer int) string {
	return DecoderLayerPrefix + strconv.Itoa(layer) + rotaryInvFreqSuffix
}

// RotaryInvFreqLayer reports whether name is a saved rotary buffer, and of which layer.
// Only canonical decimal layer numbers match ("model.layers.01…" does not).
func RotaryInvFreqLayer(name string) (layer int, ok bool) {
	num, found := strings.CutPrefix(name, DecoderLayerPrefix)
	if !found {
		return 0, false
	}
	num, found = strings.CutSuffix(num, rotaryInvFreqSuffix)
	if !found {
		return 0, false
	}
	l, err := strconv.Atoi(num)
	if err != nil || l < 0 || strconv.Itoa(l) != num {
		return 0, false
	}
	return l, true
}

// RotaryInvFreq is inv_freq as util.py computes it: 1 / base^(2i/head_dim) for
// i in [0, head_dim/2).
func RotaryInvFreq(cfg Config) []float64 {
	d := cfg.HeadDim()
	out := make([]float64, d/2)
	for i := range out {
		out[i] = 1 / math.Pow(RoPEBase, float64(2*i)/float64(d))
	}
	return out
}

// rotaryTolerance is the relative error allowed in a saved inv_freq value: bf16 keeps 8
// significant bits, so rounding to nearest is off by at most 2⁻⁹ of the value; 2⁻⁸ also
// admits a round-toward-zero cast. A buffer for another base or head_dim is off by far more
// (base 500000 against 10000 differs by 4 % already at i = 1).
const rotaryTolerance = 1.0 / 256

// RotaryShapeOK reports whether shape is the shape of a saved rotary buffer for cfg.
func RotaryShapeOK(cfg Config, shape []int) bool {
	return len(shape) == 1 && shape[0] == cfg.HeadDim()/2
}

// CheckRotaryInvFreq checks a saved rotary buffer against cfg: its layer exists, its shape
// is [head_dim/2], and every value is within bf16 rounding of RotaryInvFreq. The error
// names the tensor and the first value that disagrees.
func CheckRotaryInvFreq(cfg Config, name string, shape []int, values []float32) error {
	layer, ok := RotaryInvFreqLayer(name)
	if !ok {
		return fmt.Errorf("tensor %q is not a rotary inv_freq buffer", name)
	}
	if layer >= cfg.NumHiddenLayers {
		return fmt.Errorf("tensor %q: layer %d does not exist (num_hidden_layers %d)", name, layer, cfg.NumHiddenLayers)
	}
	if !RotaryShapeOK(cfg, shape) {
		return fmt.Errorf("tensor %q: shape %v, want [%d] (head_dim %d / 2)", name, shape, cfg.HeadDim()/2, cfg.HeadDim())
	}
	want := RotaryInvFreq(cfg)
	if len(values) != len(want) {
		return fmt.Errorf("tensor %q: %d values, want %d", name, len(values), len(want))
	}
	for i, w := range want {
		v := float64(values[i])
		// written so that NaN fails too
		if !(math.Abs(v-w) <= rotaryTolerance*w) {
			return fmt.Errorf("tensor %q: value [%d] is %g, want %g (1/%g^(%d/%d)): the rotary base or head_dim disagrees with the config",
				name, i, v, w, RoPEBase, 2*i, cfg.HeadDim())
		}
	}
	return nil
}
