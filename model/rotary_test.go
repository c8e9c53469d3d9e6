package model

import (
	"math"
	"strings"
	"testing"

	"github.com/x448/float16"
)

func TestRotaryInvFreqLayer(t *testing.T) {
	for _, c := range []struct {
		name  string
		layer int
		ok    bool
	}{
		{"model.layers.0.self_attn.rotary_emb.inv_freq", 0, true},
		{"model.layers.31.self_attn.rotary_emb.inv_freq", 31, true},
		{"model.layers.01.self_attn.rotary_emb.inv_freq", 0, false},
		{"model.layers.-1.self_attn.rotary_emb.inv_freq", 0, false},
		{"model.layers..self_attn.rotary_emb.inv_freq", 0, false},
		{"model.layers.0.self_attn.rotary_emb.inv_freq.x", 0, false},
		{"model.layers.0.input_layernorm.weight", 0, false},
	} {
		l, ok := RotaryInvFreqLayer(c.name)
		if ok != c.ok || l != c.layer {
			t.Errorf("RotaryInvFreqLayer(%q) = %d, %v; want %d, %v", c.name, l, ok, c.layer, c.ok)
		}
		if c.ok && RotaryInvFreqName(c.layer) != c.name {
			t.Errorf("RotaryInvFreqName(%d) = %q", c.layer, RotaryInvFreqName(c.layer))
		}
	}
}

// bf16 rounds a float32 to bfloat16 (round to nearest even) and back, as torch's
// .to(torch.bfloat16) does when the published checkpoint's buffers were saved.
func bf16(v float32) float32 {
	b := math.Float32bits(v)
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}

func TestCheckRotaryInvFreq(t *testing.T) {
	cfg := Config{HiddenSize: 4096, NumAttentionHeads: 32, NumHiddenLayers: 32}
	name := RotaryInvFreqName(3)
	want := RotaryInvFreq(cfg)
	if len(want) != 64 || want[0] != 1 || math.Abs(want[1]-1/math.Pow(10000, 2.0/128)) > 1e-15 {
		t.Fatalf("RotaryInvFreq = %v", want[:2])
	}
	values := func(f func(float64) float32) []float32 {
		out := make([]float32, len(want))
		for i, w := range want {
			out[i] = f(w)
		}
		return out
	}
	good := map[string][]float32{
		"f32":  values(func(w float64) float32 { return float32(w) }),
		"bf16": values(func(w float64) float32 { return bf16(float32(w)) }),
		"f16":  values(func(w float64) float32 { return float16.Fromfloat32(float32(w)).Float32() }),
	}
	for dtype, v := range good {
		if err := CheckRotaryInvFreq(cfg, name, []int{64}, v); err != nil {
			t.Errorf("%s: %v", dtype, err)
		}
	}
	base500k := values(func(w float64) float32 { return float32(w) })
	for i := range base500k {
		base500k[i] = float32(1 / math.Pow(500000, float64(2*i)/128))
	}
	nan := values(func(w float64) float32 { return float32(w) })
	nan[5] = float32(math.NaN())
	for _, c := range []struct {
		what   string
		name   string
		shape  []int
		values []float32
		want   string
	}{
		{"other base", name, []int{64}, base500k, "value [1]"},
		{"NaN", name, []int{64}, nan, "value [5] is NaN"},
		{"zeros", name, []int{64}, make([]float32, 64), "value [0] is 0"},
		{"shape", name, []int{128}, make([]float32, 128), "shape [128], want [64]"},
		{"layer", RotaryInvFreqName(32), []int{64}, good["f32"], "layer 32 does not exist"},
		{"name", "model.norm.weight", []int{64}, good["f32"], "not a rotary inv_freq buffer"},
	} {
		err := CheckRotaryInvFreq(cfg, c.name, c.shape, c.values)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: error %v, want one naming %q and saying %q", c.what, err, c.name, c.want)
		}
	}
}
