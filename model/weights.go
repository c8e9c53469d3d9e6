package model

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// TensorSource is where weights come from: a Hugging Face safetensors checkpoint
// (*safetensors.Checkpoint) today, a converted quantized package later. Tensors are read
// one at a time so that nothing but the destination is held in memory.
type TensorSource interface {
	// Names lists every tensor the source holds.
	Names() []string
	// Shape is the named tensor's shape, or false when the source has no such tensor.
	Shape(name string) ([]int, bool)
	// ReadFloat32 converts the named tensor to float32 into dst, whose length is the
	// tensor's element count. Errors name the file and the tensor.
	ReadFloat32(name string, dst []float32) error
}

// MatrixSource is a TensorSource that can hand out a weight matrix in the encoding it
// stores (a package: q4, q8, f16 or f32). LoadWeights fills the Matrix fields from it, so
// that a quantized package stays quantized in memory.
type MatrixSource interface {
	TensorSource
	// ReadMatrix returns the named tensor as an [N, K] Matrix, K the product of its shape
	// after the first dimension. Its slices may point into memory the source maps
	// (Matrix.Owner keeps that alive) and must not be written. Errors name the tensor.
	ReadMatrix(name string) (Matrix, error)
}

// Weights are all the tensors of a CogVLM checkpoint, row-major: the weight matrices
// (Linear weights, the token embedding, lm_head, the patch-embedding convolution as
// [D, C·P·P]) as Matrix, in the encoding their source stores, the vectors and the
// position embedding as float32. Every field's hf
// tag is its Hugging Face name (%d is the layer index) and its shape tag its shape in the
// symbols of the checkpoint README: H hidden_size, I intermediate_size, V vocab_size,
// D vision hidden_size, F vision intermediate_size, C in_channels, P patch_size,
// N num_positions. Linear weights are [out, in]: y = x·Wᵀ.
type Weights struct {
	EmbedTokens Matrix         `hf:"model.embed_tokens.weight" shape:"V,H"`
	Vision      VisionWeights  // EVA2-CLIP tower
	Adapter     AdapterWeights // GLU projection into the language model, boi/eoi
	Layers      []DecoderLayer `count:"num_hidden_layers"`
	Norm        []float32      `hf:"model.norm.weight" shape:"H"`
	LMHead      Matrix         `hf:"lm_head.weight" shape:"V,H"`
}

// VisionWeights are the EVA2-CLIP-E vision tower.
type VisionWeights struct {
	PatchWeight       Matrix        `hf:"model.vision.patch_embedding.proj.weight" shape:"D,C,P,P"` // Conv2d, kernel = stride = P
	PatchBias         []float32     `hf:"model.vision.patch_embedding.proj.bias" shape:"D"`
	ClsEmbedding      []float32     `hf:"model.vision.patch_embedding.cls_embedding" shape:"1,D"`
	PositionEmbedding []float32     `hf:"model.vision.patch_embedding.position_embedding.weight" shape:"N,D"`
	Layers            []VisionLayer `count:"vision_config.num_hidden_layers"`
}

// VisionLayer is one EVA2-CLIP transformer layer. Its norms apply to the output of the
// sub-block (x = x + LN(block(x))), hence their names.
type VisionLayer struct {
	InputLayernormWeight         []float32 `hf:"model.vision.transformer.layers.%d.input_layernorm.weight" shape:"D"`
	InputLayernormBias           []float32 `hf:"model.vision.transformer.layers.%d.input_layernorm.bias" shape:"D"`
	QueryKeyValueWeight          Matrix    `hf:"model.vision.transformer.layers.%d.attention.query_key_value.weight" shape:"3D,D"` // rows [3][heads][head_dim]
	QueryKeyValueBias            []float32 `hf:"model.vision.transformer.layers.%d.attention.query_key_value.bias" shape:"3D"`
	DenseWeight                  Matrix    `hf:"model.vision.transformer.layers.%d.attention.dense.weight" shape:"D,D"`
	DenseBias                    []float32 `hf:"model.vision.transformer.layers.%d.attention.dense.bias" shape:"D"`
	PostAttentionLayernormWeight []float32 `hf:"model.vision.transformer.layers.%d.post_attention_layernorm.weight" shape:"D"`
	PostAttentionLayernormBias   []float32 `hf:"model.vision.transformer.layers.%d.post_attention_layernorm.bias" shape:"D"`
	FC1Weight                    Matrix    `hf:"model.vision.transformer.layers.%d.mlp.fc1.weight" shape:"F,D"`
	FC1Bias                      []float32 `hf:"model.vision.transformer.layers.%d.mlp.fc1.bias" shape:"F"`
	FC2Weight                    Matrix    `hf:"model.vision.transformer.layers.%d.mlp.fc2.weight" shape:"D,F"`
	FC2Bias                      []float32 `hf:"model.vision.transformer.layers.%d.mlp.fc2.bias" shape:"D"`
}

// AdapterWeights are the GLU that maps vision features into the language model's space,
// and the learned boi/eoi rows put around the image.
type AdapterWeights struct {
	LinearProj  Matrix    `hf:"model.vision.linear_proj.linear_proj.weight" shape:"H,D"`
	Norm1Weight []float32 `hf:"model.vision.linear_proj.norm1.weight" shape:"H"`
	Norm1Bias   []float32 `hf:"model.vision.linear_proj.norm1.bias" shape:"H"`
	GateProj    Matrix    `hf:"model.vision.linear_proj.gate_proj.weight" shape:"I,H"`
	DenseHTo4H  Matrix    `hf:"model.vision.linear_proj.dense_h_to_4h.weight" shape:"I,H"`
	Dense4HToH  Matrix    `hf:"model.vision.linear_proj.dense_4h_to_h.weight" shape:"H,I"`
	BOI         []float32 `hf:"model.vision.boi" shape:"1,1,H"`
	EOI         []float32 `hf:"model.vision.eoi" shape:"1,1,H"`
}

// DecoderLayer is one language-model layer: shared norms and two experts (vision and
// language) of the attention projections and the MLP.
type DecoderLayer struct {
	InputLayernorm         []float32 `hf:"model.layers.%d.input_layernorm.weight" shape:"H"`
	VisionQueryKeyValue    Matrix    `hf:"model.layers.%d.self_attn.vision_expert_query_key_value.weight" shape:"3H,H"` // rows [3][heads][head_dim]
	VisionDense            Matrix    `hf:"model.layers.%d.self_attn.vision_expert_dense.weight" shape:"H,H"`
	LanguageQueryKeyValue  Matrix    `hf:"model.layers.%d.self_attn.language_expert_query_key_value.weight" shape:"3H,H"`
	LanguageDense          Matrix    `hf:"model.layers.%d.self_attn.language_expert_dense.weight" shape:"H,H"`
	PostAttentionLayernorm []float32 `hf:"model.layers.%d.post_attention_layernorm.weight" shape:"H"`
	VisionGateProj         Matrix    `hf:"model.layers.%d.mlp.vision_mlp.gate_proj.weight" shape:"I,H"`
	VisionUpProj           Matrix    `hf:"model.layers.%d.mlp.vision_mlp.up_proj.weight" shape:"I,H"`
	VisionDownProj         Matrix    `hf:"model.layers.%d.mlp.vision_mlp.down_proj.weight" shape:"H,I"`
	LanguageGateProj       Matrix    `hf:"model.layers.%d.mlp.language_mlp.gate_proj.weight" shape:"I,H"`
	LanguageUpProj         Matrix    `hf:"model.layers.%d.mlp.language_mlp.up_proj.weight" shape:"I,H"`
	LanguageDownProj       Matrix    `hf:"model.layers.%d.mlp.language_mlp.down_proj.weight" shape:"H,I"`
}

// Expert is one expert's weights of a decoder layer.
type Expert struct {
	QueryKeyValue, Dense, GateProj, UpProj, DownProj Matrix
}

// Expert returns the vision expert (vision true) or the language expert of the layer.
func (l *DecoderLayer) Expert(vision bool) Expert {
	if vision {
		return Expert{l.VisionQueryKeyValue, l.VisionDense, l.VisionGateProj, l.VisionUpProj, l.VisionDownProj}
	}
	return Expert{l.LanguageQueryKeyValue, l.LanguageDense, l.LanguageGateProj, l.LanguageUpProj, l.LanguageDownProj}
}

// TensorSpec is one tensor a checkpoint must hold.
type TensorSpec struct {
	Name  string
	Shape []int
}

// TensorSpecs lists every tensor of a checkpoint for cfg, in the order of the Weights
// struct, with the shape the config implies. cfg must be valid.
func TensorSpecs(cfg Config) ([]TensorSpec, error) {
	bindings, err := bind(cfg, &Weights{})
	if err != nil {
		return nil, err
	}
	specs := make([]TensorSpec, len(bindings))
	for i, b := range bindings {
		specs[i] = b.TensorSpec
	}
	return specs, nil
}

// binding ties a tensor to the Weights field it fills: a float32 vector or a Matrix.
type binding struct {
	TensorSpec
	vec *[]float32 // nil for a matrix
	mat *Matrix    // nil for a vector
}

// bind walks w's fields by their tags and returns one binding per tensor; layer slices are
// allocated to the length their count tag names (those already that long are kept).
// Validate bounds the counts (maxLayers), so a config cannot make this allocate without
// limit.
func bind(cfg Config, w *Weights) ([]binding, error) {
	dims := map[string]int{
		"H": cfg.HiddenSize, "I": cfg.IntermediateSize, "V": cfg.VocabSize,
		"D": cfg.Vision.HiddenSize, "F": cfg.Vision.IntermediateSize, "C": cfg.Vision.InChannels,
		"P": cfg.Vision.PatchSize, "N": cfg.Vision.NumPositions,
	}
	counts := map[string]int{
		"num_hidden_layers":               cfg.NumHiddenLayers,
		"vision_config.num_hidden_layers": cfg.Vision.NumHiddenLayers,
	}
	var out []binding
	var walk func(v reflect.Value, layer int) error
	walk = func(v reflect.Value, layer int) error {
		t := v.Type()
		for i := range t.NumField() {
			f, fv := t.Field(i), v.Field(i)
			vec, mat := f.Type == reflect.TypeFor[[]float32](), f.Type == reflect.TypeFor[Matrix]()
			switch {
			case vec || mat:
				name := f.Tag.Get("hf")
				if strings.Contains(name, "%d") {
					name = fmt.Sprintf(name, layer)
				}
				shape, err := parseShape(f.Tag.Get("shape"), dims)
				if err != nil {
					return fmt.Errorf("%s.%s: %v", t.Name(), f.Name, err)
				}
				b := binding{TensorSpec: TensorSpec{name, shape}}
				if vec {
					b.vec = fv.Addr().Interface().(*[]float32)
				} else {
					b.mat = fv.Addr().Interface().(*Matrix)
				}
				out = append(out, b)
			case f.Type.Kind() == reflect.Struct:
				if err := walk(fv, layer); err != nil {
					return err
				}
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				n, ok := counts[f.Tag.Get("count")]
				if !ok {
					return fmt.Errorf("%s.%s: unknown count tag %q", t.Name(), f.Name, f.Tag.Get("count"))
				}
				if n < 0 || n > maxLayers {
					return fmt.Errorf("%s %d is outside [0, %d]", f.Tag.Get("count"), n, maxLayers)
				}
				if fv.Len() != n { // a loaded model's layers are bound as they are
					fv.Set(reflect.MakeSlice(f.Type, n, n))
				}
				for j := range n {
					if err := walk(fv.Index(j), j); err != nil {
						return err
					}
				}
			default:
				return fmt.Errorf("%s.%s: field type %s has no tensor binding", t.Name(), f.Name, f.Type)
			}
		}
		return nil
	}
	if err := walk(reflect.ValueOf(w).Elem(), 0); err != nil {
		return nil, err
	}
	return out, nil
}

// maxElements bounds one tensor so that a hostile config cannot overflow int or ask for
// an absurd allocation; CogVLM-17B's largest tensor (embed_tokens) has 131 M elements.
const maxElements = 1 << 34

// parseShape turns a shape tag such as "3H,H" into sizes: each dimension is an optional
// integer factor times an optional symbol.
func parseShape(tag string, dims map[string]int) ([]int, error) {
	if tag == "" {
		return nil, fmt.Errorf("missing shape tag")
	}
	var shape []int
	total := 1
	for _, d := range strings.Split(tag, ",") {
		digits := strings.TrimRightFunc(d, func(r rune) bool { return r < '0' || r > '9' })
		factor, sym := 1, d[len(digits):]
		if digits != "" {
			var err error
			if factor, err = strconv.Atoi(digits); err != nil {
				return nil, fmt.Errorf("bad shape tag %q", tag)
			}
		}
		size := factor
		if sym != "" {
			v, ok := dims[sym]
			if !ok {
				return nil, fmt.Errorf("shape tag %q: unknown symbol %q", tag, sym)
			}
			if v > maxElements/max(size, 1) {
				return nil, fmt.Errorf("shape tag %q: dimension %q is %d × %d (total limit %d elements)", tag, d, factor, v, maxElements)
			}
			size *= v
		}
		if size <= 0 || size > maxElements/total {
			return nil, fmt.Errorf("shape tag %q: dimension %q is %d (total limit %d elements)", tag, d, size, maxElements)
		}
		total *= size
		shape = append(shape, size)
	}
	return shape, nil
}

// Prefixes of the per-layer tensor names, for counting the layers a checkpoint holds.
const (
	decoderLayerPrefix = "model.layers."
	visionLayerPrefix  = "model.vision.transformer.layers."
)

// heldLayers is the number of layers (highest index + 1) that names hold tensors of
// under prefix: "model.layers.7.…" counts as 8 layers.
func heldLayers(names []string, prefix string) int {
	held := 0
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		num, _, ok := strings.Cut(rest, ".")
		if l, err := strconv.Atoi(num); ok && err == nil && l >= 0 && l < maxLayers {
			held = max(held, l+1)
		}
	}
	return held
}

// checkLayerCounts compares the config's layer counts with the layers the source holds,
// before anything is allocated per layer: a config.json that says 10⁹ layers next to a
// one-layer checkpoint is refused here, naming the key, instead of listing 10⁹ missing
// layers or running out of memory.
func checkLayerCounts(cfg Config, names []string) error {
	for _, c := range []struct {
		key, prefix, what string
		want              int
	}{
		{"num_hidden_layers", decoderLayerPrefix, "decoder", cfg.NumHiddenLayers},
		{"vision_config.num_hidden_layers", visionLayerPrefix, "vision", cfg.Vision.NumHiddenLayers},
	} {
		held := heldLayers(names, c.prefix)
		switch {
		case c.want > held && held == 0:
			return fmt.Errorf("config says %s %d, but the checkpoint holds no %s layer (no tensor named %sN.…)",
				c.key, c.want, c.what, c.prefix)
		case c.want > held:
			return fmt.Errorf("config says %s %d, but the checkpoint holds %s layers 0 to %d only (tensors %sN.…)",
				c.key, c.want, c.what, held-1, c.prefix)
		}
	}
	return nil
}

// LoadWeights reads every tensor of cfg's model from src, tensor by tensor. Before reading
// anything it compares the source's tensor list with what cfg implies and fails with one
// error that lists every missing, unexpected and wrongly-shaped tensor. The published
// checkpoints' rotary buffers (RotaryInvFreqName) are accepted when present, checked
// against the config (CheckRotaryInvFreq) and dropped. From a MatrixSource (a package)
// the weight matrices stay in their stored encoding; otherwise they are read as float32.
// A weight that is NaN or infinite is refused, naming the tensor.
func LoadWeights(cfg Config, src TensorSource) (*Weights, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	names := src.Names()
	if err := checkLayerCounts(cfg, names); err != nil {
		return nil, err
	}
	w := &Weights{}
	bindings, err := bind(cfg, w)
	if err != nil {
		return nil, err
	}
	var missing, shapes []string
	expected := make(map[string]bool, len(bindings))
	for _, b := range bindings {
		expected[b.Name] = true
		got, ok := src.Shape(b.Name)
		switch {
		case !ok:
			missing = append(missing, b.Name)
		case !slices.Equal(got, b.Shape):
			shapes = append(shapes, fmt.Sprintf("%s %v (want %v)", b.Name, got, b.Shape))
		}
	}
	var unexpected, rotary []string
	for _, name := range names {
		switch l, ok := RotaryInvFreqLayer(name); {
		case expected[name]:
		case ok && l < cfg.NumHiddenLayers:
			rotary = append(rotary, name)
		default:
			unexpected = append(unexpected, name)
		}
	}
	if len(missing)+len(shapes)+len(unexpected) > 0 {
		var parts []string
		for _, p := range []struct {
			what  string
			names []string
		}{{"missing", missing}, {"unexpected", unexpected}, {"wrong shape", shapes}} {
			if len(p.names) > 0 {
				slices.Sort(p.names)
				parts = append(parts, fmt.Sprintf("%d %s: %s", len(p.names), p.what, listNames(p.names)))
			}
		}
		return nil, fmt.Errorf("checkpoint does not match config: %s", strings.Join(parts, "; "))
	}
	for _, name := range rotary {
		shape, _ := src.Shape(name)
		var values []float32 // read only when the shape is right: the shape bounds the read
		if RotaryShapeOK(cfg, shape) {
			values = make([]float32, shape[0])
			if err := src.ReadFloat32(name, values); err != nil {
				return nil, err
			}
		}
		if err := CheckRotaryInvFreq(cfg, name, shape, values); err != nil {
			return nil, err
		}
	}
	ms, _ := src.(MatrixSource)
	for _, b := range bindings {
		if err := b.read(src, ms); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// read fills the binding's field from src: a matrix through ms when the source is one,
// then checks that every weight is finite.
func (b binding) read(src TensorSource, ms MatrixSource) error {
	n := 1
	for _, d := range b.Shape {
		n *= d
	}
	var err error
	switch {
	case b.mat != nil && ms != nil:
		var m Matrix
		if m, err = ms.ReadMatrix(b.Name); err != nil {
			return err
		}
		if err = m.Check(b.Shape[0], n/b.Shape[0]); err == nil {
			err = m.CheckFinite()
		}
		*b.mat = m
	case b.mat != nil:
		v := make([]float32, n)
		if err := src.ReadFloat32(b.Name, v); err != nil {
			return err
		}
		*b.mat = F32Matrix(b.Shape[0], n/b.Shape[0], v)
		err = checkFinite(v)
	default:
		*b.vec = make([]float32, n)
		if err := src.ReadFloat32(b.Name, *b.vec); err != nil {
			return err
		}
		err = checkFinite(*b.vec)
	}
	if err != nil {
		return fmt.Errorf("tensor %q: %v", b.Name, err)
	}
	return nil
}

// Tensor returns the named float32 tensor of the loaded weights: the model's own slice,
// so writing to it changes the model (calibration swaps quantized weights in this way).
// It reports false for a name the model has no tensor of, and for a weight matrix kept
// packed (loaded from a package in f16, q4 or q8).
func (m *Model) Tensor(name string) ([]float32, bool) {
	bindings, err := bind(m.Config, m.Weights)
	if err != nil {
		return nil, false
	}
	for _, b := range bindings {
		switch {
		case b.Name != name:
		case b.vec != nil:
			return *b.vec, true
		case b.mat.Encoding == quant.F32:
			return b.mat.F32, true
		default:
			return nil, false
		}
	}
	return nil, false
}

// maxListedNames caps each list of a mismatch error: a config for the wrong model size
// gets thousands of mismatches, and the first few already say what is wrong.
const maxListedNames = 20

func listNames(names []string) string {
	if len(names) <= maxListedNames {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, … and %d more", strings.Join(names[:maxListedNames], ", "), len(names)-maxListedNames)
}
