package pkg

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

// synthTensor is one tensor of a synthetic checkpoint.
type synthTensor struct {
	Name  string
	DType safetensors.DType
	Shape []int
	// Values, when set, are written (encoded in DType) instead of random data.
	Values []float32
}

func (s synthTensor) bytes() int64 {
	n := int64(s.DType.Size())
	for _, d := range s.Shape {
		n *= int64(d)
	}
	return n
}

// smallConfig is a CogVLM config small enough for quick converter tests, with the full
// 32000-piece vocabulary of the real tokenizer.
func smallConfig() model.Config {
	return model.Config{
		Architectures: []string{model.Architecture}, BOSTokenID: 1, EOSTokenID: 2, PadTokenID: 0,
		HiddenAct: "silu", HiddenSize: 32, IntermediateSize: 64, MaxPositionEmbeddings: 2048,
		NumAttentionHeads: 2, NumHiddenLayers: 1, RMSNormEps: 1e-5, TorchDtype: "bfloat16", VocabSize: 32000,
		Vision: model.VisionConfig{
			HiddenAct: "gelu", HiddenSize: 32, ImageSize: 28, InChannels: 3, IntermediateSize: 64,
			LayerNormEps: 1e-6, NumHeads: 2, NumHiddenLayers: 1, NumPositions: 5, PatchSize: 14,
		},
	}
}

// synthTensors lists cfg's tensors in dtype.
func synthTensors(t testing.TB, cfg model.Config, dtype safetensors.DType) []synthTensor {
	t.Helper()
	specs, err := model.TensorSpecs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]synthTensor, len(specs))
	for i, s := range specs {
		out[i] = synthTensor{Name: s.Name, DType: dtype, Shape: s.Shape}
	}
	return out
}

// writeSynthCheckpoint writes a Hugging Face folder: config.json (configJSON, or cfg
// marshalled when nil), the real tokenizer.model (so conversion writes tokenizer.json from
// it), and model.safetensors holding tensors with deterministic pseudo-random values in
// ±[2⁻⁷, 2⁻³), streamed a chunk at a time so that a checkpoint of gigabytes never is in
// memory. It returns the safetensors data size.
func writeSynthCheckpoint(t testing.TB, dir string, cfg model.Config, configJSON []byte, tensors []synthTensor) int64 {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if configJSON == nil {
		var err error
		if configJSON, err = json.Marshal(cfg); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := os.ReadFile(filepath.Join(goldenDir, "tokenizer", "tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"config.json": configJSON, "tokenizer.model": tok} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var offset int64
	for _, s := range tensors {
		header[s.Name] = map[string]any{"dtype": s.DType, "shape": s.Shape, "data_offsets": []int64{offset, offset + s.bytes()}}
		offset += s.bytes()
	}
	js, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	f, err := os.Create(filepath.Join(dir, safetensors.SingleFileName))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	binary.Write(w, binary.LittleEndian, uint64(len(js)))
	w.Write(js)
	r := rand.New(rand.NewPCG(42, 42))
	chunk := make([]byte, 1<<20)
	for _, s := range tensors {
		if s.Values != nil {
			if _, err := w.Write(safetensors.EncodeFloat32(s.Name, s.Shape, s.Values, s.DType).Data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		for left := s.bytes(); left > 0; {
			part := chunk[:min(left, int64(len(chunk)))]
			fillRandom(r, s.DType, part)
			if _, err := w.Write(part); err != nil {
				t.Fatal(err)
			}
			left -= int64(len(part))
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return offset
}

// fillRandom fills b with random finite values of dtype (random bytes for non-float
// dtypes).
func fillRandom(r *rand.Rand, dtype safetensors.DType, b []byte) {
	// a random sign, exponent 2⁻⁷..2⁻⁴ and mantissa, from 16 random bits
	bf16 := func(u uint64) uint16 { return uint16(u)&0x807F | uint16(0x78+u>>7&3)<<7 }
	switch dtype {
	case safetensors.BF16:
		for i := 0; i+8 <= len(b); i += 8 {
			u := r.Uint64()
			for j := range 4 {
				binary.LittleEndian.PutUint16(b[i+2*j:], bf16(u>>(16*j)))
			}
		}
	case safetensors.F32:
		for i := 0; i+8 <= len(b); i += 8 {
			u := r.Uint64()
			for j := range 2 {
				binary.LittleEndian.PutUint32(b[i+4*j:], math.Float32bits(safetensors.BF16ToFloat32(bf16(u>>(32*j)))))
			}
		}
	default:
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	}
}

func TestSynthCheckpointLoads(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	writeSynthCheckpoint(t, dir, cfg, nil, synthTensors(t, cfg, safetensors.BF16))
	ckpt, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ckpt.Close()
	w, err := model.LoadWeights(cfg, ckpt)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range w.EmbedTokens.F32 {
		if a := math.Abs(float64(v)); !(a >= 1.0/128 && a < 1.0/8) {
			t.Fatalf("synthetic weight %g outside ±[2⁻⁷, 2⁻³)", v)
		}
	}
	if got := fmt.Sprint(len(w.Layers)); got != "1" {
		t.Fatalf("%s layers", got)
	}
}
