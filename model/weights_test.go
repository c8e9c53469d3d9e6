package model

import (
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

// memSource is an in-memory TensorSource.
type memSource struct {
	shapes map[string][]int
	data   map[string][]float32
}

func (s *memSource) Names() []string { return slices.Sorted(maps.Keys(s.shapes)) }

func (s *memSource) Shape(name string) ([]int, bool) {
	sh, ok := s.shapes[name]
	return sh, ok
}

func (s *memSource) ReadFloat32(name string, dst []float32) error {
	d, ok := s.data[name]
	if !ok || len(d) != len(dst) {
		return fmt.Errorf("memSource: tensor %q: have %d values, want %d", name, len(d), len(dst))
	}
	copy(dst, d)
	return nil
}

// fullSource holds every tensor cfg needs; tensor i is filled with the value i.
func fullSource(t *testing.T, cfg Config) *memSource {
	t.Helper()
	specs, err := TensorSpecs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &memSource{shapes: map[string][]int{}, data: map[string][]float32{}}
	for i, sp := range specs {
		n := 1
		for _, d := range sp.Shape {
			n *= d
		}
		s.shapes[sp.Name] = sp.Shape
		s.data[sp.Name] = slices.Repeat([]float32{float32(i)}, n)
	}
	return s
}

// smallConfig is the golden config with a 100-token vocabulary, so sources stay small.
func smallConfig(t *testing.T) Config {
	cfg := goldenConfig(t)
	cfg.VocabSize = 100
	return cfg
}

// TestTensorSpecsMatchGoldenCheckpoint: the names and shapes the config implies are
// exactly those of the real-layout checkpoint.
func TestTensorSpecsMatchGoldenCheckpoint(t *testing.T) {
	cfg := goldenConfig(t)
	specs, err := TensorSpecs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// top level 3, vision 4 + 12 per layer, adapter 8, decoder 12 per layer
	if want := 3 + 4 + 12*cfg.Vision.NumHiddenLayers + 8 + 12*cfg.NumHiddenLayers; len(specs) != want {
		t.Errorf("%d tensor specs, want %d", len(specs), want)
	}
	ckpt, err := safetensors.OpenCheckpoint(filepath.Join(goldenDir, "tiny-chat", "model"))
	if err != nil {
		t.Fatal(err)
	}
	defer ckpt.Close()
	var names []string
	for _, sp := range specs {
		names = append(names, sp.Name)
		got, ok := ckpt.Shape(sp.Name)
		if !ok || !slices.Equal(got, sp.Shape) {
			t.Errorf("%s: checkpoint shape %v (present %v), spec %v", sp.Name, got, ok, sp.Shape)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, ckpt.Names()) {
		t.Errorf("spec names differ from the checkpoint's:\n%v\n%v", names, ckpt.Names())
	}
}

func TestLoadWeightsFillsEveryField(t *testing.T) {
	cfg := smallConfig(t)
	src := fullSource(t, cfg)
	w, err := LoadWeights(cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Layers) != cfg.NumHiddenLayers || len(w.Vision.Layers) != cfg.Vision.NumHiddenLayers {
		t.Fatalf("%d decoder and %d vision layers", len(w.Layers), len(w.Vision.Layers))
	}
	// fields hold their own tensor's values (tensor i is filled with i)
	for _, tc := range []struct {
		name string
		got  []float32
	}{
		{"model.embed_tokens.weight", w.EmbedTokens.F32},
		{"lm_head.weight", w.LMHead.F32},
		{"model.layers.1.self_attn.vision_expert_dense.weight", w.Layers[1].VisionDense.F32},
		{"model.layers.0.mlp.language_mlp.down_proj.weight", w.Layers[0].LanguageDownProj.F32},
		{"model.vision.transformer.layers.1.mlp.fc2.bias", w.Vision.Layers[1].FC2Bias},
		{"model.vision.linear_proj.dense_4h_to_h.weight", w.Adapter.Dense4HToH.F32},
		{"model.vision.eoi", w.Adapter.EOI},
	} {
		if !slices.Equal(tc.got, src.data[tc.name]) {
			t.Errorf("%s: field holds %d values starting %v, want the tensor's %d values of %v",
				tc.name, len(tc.got), tc.got[:min(1, len(tc.got))], len(src.data[tc.name]), src.data[tc.name][0])
		}
	}
	e := w.Layers[0].Expert(true)
	if &e.QueryKeyValue.F32[0] != &w.Layers[0].VisionQueryKeyValue.F32[0] || &w.Layers[0].Expert(false).UpProj.F32[0] != &w.Layers[0].LanguageUpProj.F32[0] {
		t.Error("Expert returns the wrong expert's weights")
	}
}

// TestLoadWeightsListsEveryMismatch: one error names every missing, unexpected and
// wrongly-shaped tensor, before anything is read.
func TestLoadWeightsListsEveryMismatch(t *testing.T) {
	cfg := smallConfig(t)
	src := fullSource(t, cfg)
	delete(src.shapes, "model.layers.1.post_attention_layernorm.weight")
	delete(src.shapes, "model.vision.boi")
	src.shapes["model.layers.0.self_attn.rotary_emb.inv_freq"] = []int{8}       // accepted (and checked after the list)
	src.shapes["model.layers.2.self_attn.rotary_emb.inv_freq"] = []int{8}       // a layer the config does not have
	src.shapes["model.layers.1.mlp.vision_mlp.up_proj.weight"] = []int{64, 176} // transposed
	src.data = nil                                                              // nothing may be read
	_, err := LoadWeights(cfg, src)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{
		"2 missing: model.layers.1.post_attention_layernorm.weight, model.vision.boi",
		"1 unexpected: model.layers.2.self_attn.rotary_emb.inv_freq",
		"1 wrong shape: model.layers.1.mlp.vision_mlp.up_proj.weight [64 176] (want [176 64])",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q", want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Error("error spans several lines")
	}
}

func TestLoadWeightsCapsLongLists(t *testing.T) {
	cfg := smallConfig(t)
	// every tensor is missing but one of the last layer of each stack, so that the layer
	// counts agree and the mismatch list is reached
	src := &memSource{shapes: map[string][]int{
		fmt.Sprintf("model.layers.%d.input_layernorm.weight", cfg.NumHiddenLayers-1):                         {cfg.HiddenSize},
		fmt.Sprintf("model.vision.transformer.layers.%d.input_layernorm.bias", cfg.Vision.NumHiddenLayers-1): {cfg.Vision.HiddenSize},
	}}
	_, err := LoadWeights(cfg, src)
	specs, _ := TensorSpecs(cfg)
	want := fmt.Sprintf("%d missing: ", len(specs)-2)
	more := fmt.Sprintf("… and %d more", len(specs)-2-maxListedNames)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), more) {
		t.Errorf("error %v, want one containing %q and %q", err, want, more)
	}
}

func TestLoadWeightsReadErrorAndBadConfig(t *testing.T) {
	cfg := smallConfig(t)
	src := fullSource(t, cfg)
	src.data["model.norm.weight"] = src.data["model.norm.weight"][:3]
	if _, err := LoadWeights(cfg, src); err == nil || !strings.Contains(err.Error(), "model.norm.weight") {
		t.Errorf("read error %v, want one naming model.norm.weight", err)
	}
	cfg.Vision.NumPositions = 7
	if _, err := Load(cfg, src); err == nil || !strings.Contains(err.Error(), "num_positions") {
		t.Errorf("invalid config: error %v", err)
	}
}

func TestParseShape(t *testing.T) {
	dims := map[string]int{"H": 64, "D": 32}
	for _, tc := range []struct {
		tag    string
		want   []int
		errHas string
	}{
		{"3H,H", []int{192, 64}, ""},
		{"1,1,H", []int{1, 1, 64}, ""},
		{"D", []int{32}, ""},
		{"", nil, "missing shape tag"},
		{"Q", nil, `unknown symbol "Q"`},
		{"H3", nil, "bad shape tag"},
		{"0H", nil, "dimension"},
	} {
		got, err := parseShape(tc.tag, dims)
		switch {
		case tc.errHas == "" && (err != nil || !slices.Equal(got, tc.want)):
			t.Errorf("parseShape(%q) = %v, %v; want %v", tc.tag, got, err, tc.want)
		case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
			t.Errorf("parseShape(%q) error %v, want one containing %q", tc.tag, err, tc.errHas)
		}
	}
}

// rotarySource adds the published per-layer rotary buffers to a source, with the values
// invFreq gives for layer l (nil: leave that layer's buffer out).
type rotarySource struct {
	TensorSource
	layers  int
	invFreq func(layer int) []float32
}

func (s rotarySource) Names() []string {
	names := s.TensorSource.Names()
	for l := range s.layers {
		if s.invFreq(l) != nil {
			names = append(names, RotaryInvFreqName(l))
		}
	}
	return names
}

func (s rotarySource) Shape(name string) ([]int, bool) {
	if l, ok := RotaryInvFreqLayer(name); ok && l < s.layers && s.invFreq(l) != nil {
		return []int{len(s.invFreq(l))}, true
	}
	return s.TensorSource.Shape(name)
}

func (s rotarySource) ReadFloat32(name string, dst []float32) error {
	if l, ok := RotaryInvFreqLayer(name); ok && l < s.layers && s.invFreq(l) != nil {
		copy(dst, s.invFreq(l))
		return nil
	}
	return s.TensorSource.ReadFloat32(name, dst)
}

// bf16InvFreq is inv_freq for cfg at base, rounded to bf16 as the published files store it.
func bf16InvFreq(cfg Config, base float64) []float32 {
	d := cfg.HeadDim()
	out := make([]float32, d/2)
	for i := range out {
		out[i] = safetensors.BF16ToFloat32(safetensors.Float32ToBF16(float32(1 / math.Pow(base, float64(2*i)/float64(d)))))
	}
	return out
}

// TestLoadWeightsRotaryBuffers: every golden checkpoint with the published rotary buffers
// added (bf16, as save_pretrained writes them) still reproduces its golden tokens, with
// the buffers in some layers only too; a buffer for another base, head_dim or shape is
// refused with the tensor named.
func TestLoadWeightsRotaryBuffers(t *testing.T) {
	for _, name := range []string{"tiny-chat", "tiny-text"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(goldenDir, name, "model")
			cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			ckpt, err := safetensors.OpenCheckpoint(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer ckpt.Close()
			good := bf16InvFreq(cfg, RoPEBase)
			for _, tc := range []struct {
				name    string
				invFreq func(int) []float32
				errHas  string
			}{
				{"every layer", func(int) []float32 { return good }, ""},
				{"layer 0 only", func(l int) []float32 { return map[bool][]float32{true: good}[l == 0] }, ""},
				{"rope base 500000", func(int) []float32 { return bf16InvFreq(cfg, 500000) },
					`tensor "model.layers.0.self_attn.rotary_emb.inv_freq": value [1] is`},
				{"one value off in the last layer", func(l int) []float32 {
					if l < cfg.NumHiddenLayers-1 {
						return good
					}
					bad := slices.Clone(good)
					bad[len(bad)-1] *= 1.05
					return bad
				}, fmt.Sprintf(`tensor "model.layers.%d.self_attn.rotary_emb.inv_freq": value [%d] is`, cfg.NumHiddenLayers-1, len(good)-1)},
				{"NaN", func(int) []float32 { return []float32{float32(math.NaN())} }, // the shape is wrong first
					`tensor "model.layers.0.self_attn.rotary_emb.inv_freq": shape [1], want`},
				{"head_dim of a wider model", func(int) []float32 { return slices.Concat(good, good) },
					`tensor "model.layers.0.self_attn.rotary_emb.inv_freq": shape [` + fmt.Sprint(2*len(good)) + `], want`},
			} {
				src := rotarySource{ckpt, cfg.NumHiddenLayers, tc.invFreq}
				m, err := Load(cfg, src)
				if tc.errHas != "" {
					if err == nil || !strings.Contains(err.Error(), tc.errHas) {
						t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.errHas)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				c := loadGoldenCase(t, name)
				in := Inputs{c.expected.InputIDs, c.expected.TokenTypeIDs, c.expected.PositionIDs}
				res, err := m.Generate(in, c.tensors["pixel_values"], Sampling{MaxNewTokens: c.input.MaxNewTokens}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(res.GeneratedIDs, c.expected.GeneratedIDs) {
					t.Errorf("%s: generated_ids = %v, want %v", tc.name, res.GeneratedIDs, c.expected.GeneratedIDs)
				}
			}
		})
	}
}

// TestLoadWeightsRefusesNonFinite: a NaN or infinite weight is refused with the tensor
// named, in a vector and in a matrix (issue 14: such a model used to answer one token
// forever with exit status 0).
func TestLoadWeightsRefusesNonFinite(t *testing.T) {
	cfg := smallConfig(t)
	for _, tc := range []struct {
		name  string
		index int
		value float32
		want  string
	}{
		{"model.norm.weight", 3, float32(math.NaN()), "element 3 is NaN"},
		{"model.layers.1.mlp.language_mlp.down_proj.weight", 1000, float32(math.Inf(1)), "element 1000 is +Inf"},
		{"model.embed_tokens.weight", 0, float32(math.Inf(-1)), "element 0 is -Inf"},
	} {
		src := fullSource(t, cfg)
		src.data[tc.name] = slices.Clone(src.data[tc.name])
		src.data[tc.name][tc.index] = tc.value
		_, err := LoadWeights(cfg, src)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("tensor %q: %s", tc.name, tc.want)) {
			t.Errorf("%s: error %v, want one naming the tensor and %q", tc.name, err, tc.want)
		}
	}
}

// TestLoadWeightsLayerCounts: a config.json whose layer counts exceed what the checkpoint
// holds is refused before anything is allocated per layer, naming the key (issue 14: a
// num_hidden_layers of 10⁹ ran out of memory in bind); beyond Validate's bound it is
// refused before the checkpoint is even looked at.
func TestLoadWeightsLayerCounts(t *testing.T) {
	base := smallConfig(t)
	src := fullSource(t, base)
	for _, tc := range []struct {
		name   string
		edit   func(*Config)
		errHas string
	}{
		{"1e9 decoder layers", func(c *Config) { c.NumHiddenLayers = 1e9 }, "num_hidden_layers 1000000000 is beyond the limit 4096"},
		{"1e9 vision layers", func(c *Config) { c.Vision.NumHiddenLayers = 1e9 }, "vision_config.num_hidden_layers 1000000000 is beyond the limit 4096"},
		{"more decoder layers than held", func(c *Config) { c.NumHiddenLayers = 4000 },
			fmt.Sprintf("config says num_hidden_layers 4000, but the checkpoint holds decoder layers 0 to %d only", base.NumHiddenLayers-1)},
		{"more vision layers than held", func(c *Config) { c.Vision.NumHiddenLayers = 3000 },
			fmt.Sprintf("config says vision_config.num_hidden_layers 3000, but the checkpoint holds vision layers 0 to %d only", base.Vision.NumHiddenLayers-1)},
		{"huge vocabulary", func(c *Config) { c.VocabSize = 1 << 40 }, "vocab_size 1099511627776 is beyond the limit"},
		{"huge image", func(c *Config) { c.Vision.ImageSize = 1 << 30 }, "vision_config.image_size 1073741824 is beyond the limit"},
		{"huge context", func(c *Config) { c.MaxPositionEmbeddings = 1 << 40 }, "max_position_embeddings 1099511627776 is beyond the limit"},
	} {
		cfg := base
		tc.edit(&cfg)
		if _, err := LoadWeights(cfg, src); err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.errHas)
		}
	}
	huge := base
	huge.NumHiddenLayers = 1e9
	if _, err := TensorSpecs(huge); err == nil || !strings.Contains(err.Error(), "num_hidden_layers 1000000000 is outside [0, 4096]") {
		t.Errorf("TensorSpecs of 1e9 layers: %v", err)
	}
}
