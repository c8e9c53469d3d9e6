package model

import (
	"fmt"
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
// position embedding as float32. Each struct's bind method gives every field its Hugging
// Face name (names.go) and its shape in the symbols of the checkpoint README:
// H hidden_size, I intermediate_size, V vocab_size, D vision hidden_size, F vision
// intermediate_size, C in_channels, P patch_size, N num_positions. Linear weights are
// [out, in]: y = x·Wᵀ.
type Weights struct {
	EmbedTokens Matrix
	Vision      VisionWeights  // EVA2-CLIP tower
	Adapter     AdapterWeights // GLU projection into the language model, boi/eoi
	Layers      []DecoderLayer // num_hidden_layers
	Norm        []float32
	LMHead      Matrix
}

func (w *Weights) bind(b *binder) {
	b.mat(EmbedTokensName, "V,H", &w.EmbedTokens)
	w.Vision.bind(b)
	w.Adapter.bind(b)
	bindLayers(b, "num_hidden_layers", &w.Layers, b.cfg.NumHiddenLayers, (*DecoderLayer).bind)
	b.vec(NormName, "H", &w.Norm)
	b.mat(LMHeadName, "V,H", &w.LMHead)
}

// VisionWeights are the EVA2-CLIP-E vision tower.
type VisionWeights struct {
	PatchWeight       Matrix // Conv2d, kernel = stride = P
	PatchBias         []float32
	ClsEmbedding      []float32
	PositionEmbedding []float32
	Layers            []VisionLayer // vision_config.num_hidden_layers
}

func (w *VisionWeights) bind(b *binder) {
	b.mat(VisionPatchWeightName, "D,C,P,P", &w.PatchWeight)
	b.vec(VisionPatchBiasName, "D", &w.PatchBias)
	b.vec(VisionClsEmbeddingName, "1,D", &w.ClsEmbedding)
	b.vec(VisionPositionEmbeddingName, "N,D", &w.PositionEmbedding)
	bindLayers(b, "vision_config.num_hidden_layers", &w.Layers, b.cfg.Vision.NumHiddenLayers, (*VisionLayer).bind)
}

// VisionLayer is one EVA2-CLIP transformer layer. Its norms apply to the output of the
// sub-block (x = x + LN(block(x))), hence their names.
type VisionLayer struct {
	InputLayernormWeight         []float32
	InputLayernormBias           []float32
	QueryKeyValueWeight          Matrix // rows [3][heads][head_dim]
	QueryKeyValueBias            []float32
	DenseWeight                  Matrix
	DenseBias                    []float32
	PostAttentionLayernormWeight []float32
	PostAttentionLayernormBias   []float32
	FC1Weight                    Matrix
	FC1Bias                      []float32
	FC2Weight                    Matrix
	FC2Bias                      []float32
}

func (w *VisionLayer) bind(b *binder, l int) {
	n := VisionLayerTensorNames(l)
	b.vec(n.InputLayernormWeight, "D", &w.InputLayernormWeight)
	b.vec(n.InputLayernormBias, "D", &w.InputLayernormBias)
	b.mat(n.QueryKeyValueWeight, "3D,D", &w.QueryKeyValueWeight)
	b.vec(n.QueryKeyValueBias, "3D", &w.QueryKeyValueBias)
	b.mat(n.DenseWeight, "D,D", &w.DenseWeight)
	b.vec(n.DenseBias, "D", &w.DenseBias)
	b.vec(n.PostAttentionLayernormWeight, "D", &w.PostAttentionLayernormWeight)
	b.vec(n.PostAttentionLayernormBias, "D", &w.PostAttentionLayernormBias)
	b.mat(n.FC1Weight, "F,D", &w.FC1Weight)
	b.vec(n.FC1Bias, "F", &w.FC1Bias)
	b.mat(n.FC2Weight, "D,F", &w.FC2Weight)
	b.vec(n.FC2Bias, "D", &w.FC2Bias)
}

// AdapterWeights are the GLU that maps vision features into the language model's space,
// and the learned boi/eoi rows put around the image.
type AdapterWeights struct {
	LinearProj  Matrix
	Norm1Weight []float32
	Norm1Bias   []float32
	GateProj    Matrix
	DenseHTo4H  Matrix
	Dense4HToH  Matrix
	BOI         []float32
	EOI         []float32
}

func (w *AdapterWeights) bind(b *binder) {
	b.mat(AdapterLinearProjName, "H,D", &w.LinearProj)
	b.vec(AdapterNorm1WeightName, "H", &w.Norm1Weight)
	b.vec(AdapterNorm1BiasName, "H", &w.Norm1Bias)
	b.mat(AdapterGateProjName, "I,H", &w.GateProj)
	b.mat(AdapterDenseHTo4HName, "I,H", &w.DenseHTo4H)
	b.mat(AdapterDense4HToHName, "H,I", &w.Dense4HToH)
	b.vec(BOIName, "1,1,H", &w.BOI)
	b.vec(EOIName, "1,1,H", &w.EOI)
}

// DecoderLayer is one language-model layer: shared norms and two experts (vision and
// language) of the attention projections and the MLP.
type DecoderLayer struct {
	InputLayernorm         []float32
	VisionQueryKeyValue    Matrix // rows [3][heads][head_dim]
	VisionDense            Matrix
	LanguageQueryKeyValue  Matrix
	LanguageDense          Matrix
	PostAttentionLayernorm []float32
	VisionGateProj         Matrix
	VisionUpProj           Matrix
	VisionDownProj         Matrix
	LanguageGateProj       Matrix
	LanguageUpProj         Matrix
	LanguageDownProj       Matrix
}

func (w *DecoderLayer) bind(b *binder, l int) {
	n := LayerTensorNames(l)
	b.vec(n.InputLayernorm, "H", &w.InputLayernorm)
	b.mat(n.Vision.QueryKeyValue, "3H,H", &w.VisionQueryKeyValue)
	b.mat(n.Vision.Dense, "H,H", &w.VisionDense)
	b.mat(n.Language.QueryKeyValue, "3H,H", &w.LanguageQueryKeyValue)
	b.mat(n.Language.Dense, "H,H", &w.LanguageDense)
	b.vec(n.PostAttentionLayernorm, "H", &w.PostAttentionLayernorm)
	b.mat(n.Vision.GateProj, "I,H", &w.VisionGateProj)
	b.mat(n.Vision.UpProj, "I,H", &w.VisionUpProj)
	b.mat(n.Vision.DownProj, "H,I", &w.VisionDownProj)
	b.mat(n.Language.GateProj, "I,H", &w.LanguageGateProj)
	b.mat(n.Language.UpProj, "I,H", &w.LanguageUpProj)
	b.mat(n.Language.DownProj, "H,I", &w.LanguageDownProj)
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

// binder collects the bindings of Weights' fields, with the first error.
type binder struct {
	cfg  Config
	dims map[string]int // the shape symbols
	out  []binding
	err  error
}

// bind returns one binding per tensor of w, in the order of its structs' fields; layer
// slices are allocated to the length the config gives (those already that long are kept).
// Validate bounds the counts (maxLayers), so a config cannot make this allocate without
// limit.
func bind(cfg Config, w *Weights) ([]binding, error) {
	b := &binder{cfg: cfg, dims: map[string]int{
		"H": cfg.HiddenSize, "I": cfg.IntermediateSize, "V": cfg.VocabSize,
		"D": cfg.Vision.HiddenSize, "F": cfg.Vision.IntermediateSize, "C": cfg.Vision.InChannels,
		"P": cfg.Vision.PatchSize, "N": cfg.Vision.NumPositions,
	}}
	w.bind(b)
	if b.err != nil {
		return nil, b.err
	}
	return b.out, nil
}

func (b *binder) add(name, shape string, vec *[]float32, mat *Matrix) {
	if b.err != nil {
		return
	}
	s, err := parseShape(shape, b.dims)
	if err != nil {
		b.err = fmt.Errorf("tensor %q: %v", name, err)
		return
	}
	b.out = append(b.out, binding{TensorSpec{name, s}, vec, mat})
}

// vec binds a float32 tensor of the given shape (in the symbols of Weights) to f.
func (b *binder) vec(name, shape string, f *[]float32) { b.add(name, shape, f, nil) }

// mat binds a weight matrix of the given shape (in the symbols of Weights) to f.
func (b *binder) mat(name, shape string, f *Matrix) { b.add(name, shape, nil, f) }

// bindLayers sizes a layer slice to the config's count n (key names it) and binds each
// layer; a loaded model's layers, already n long, are bound as they are.
func bindLayers[T any](b *binder, key string, layers *[]T, n int, bind func(*T, *binder, int)) {
	if b.err != nil {
		return
	}
	if n < 0 || n > maxLayers {
		b.err = fmt.Errorf("%s %d is outside [0, %d]", key, n, maxLayers)
		return
	}
	if len(*layers) != n {
		*layers = make([]T, n)
	}
	for l := range *layers {
		bind(&(*layers)[l], b, l)
	}
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

// heldLayers is the number of layers (highest index + 1) that names hold tensors of
// under prefix: "model.layers.7.…" counts as 8 layers.
func heldLayers(names []string, prefix string) int {
	held := 0
	for _, name := range names {
		if l, ok := LayerOf(name, prefix); ok && l < maxLayers {
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
		{"num_hidden_layers", DecoderLayerPrefix, "decoder", cfg.NumHiddenLayers},
		{"vision_config.num_hidden_layers", VisionLayerPrefix, "vision", cfg.Vision.NumHiddenLayers},
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
