package pkg

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/format"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

// floatSource hides ReadMatrix: the model loads every tensor through ReadFloat32, the
// float32 expansion the CPU reference used to hold.
type floatSource struct{ model.TensorSource }

// TestPackedModelMatchesFloat32: a model loaded from a package keeps its matrices in the
// package's encoding (mapped where the system allows), keeps working after the package is
// closed and garbage collected, and generates exactly what the float32 expansion of the
// same package generates: tokens, logits and vision rows bit for bit.
func TestPackedModelMatchesFloat32(t *testing.T) {
	cases := make([]*goldenCase, len(goldenCaseNames))
	for i, name := range goldenCaseNames {
		cases[i] = loadGoldenCase(t, name)
	}
	for _, enc := range quant.Encodings {
		t.Run(string(enc), func(t *testing.T) {
			p, err := Open(goldenPackage(t, enc))
			if err != nil {
				t.Fatal(err)
			}
			packed, err := model.Load(p.Config(), p)
			if err != nil {
				t.Fatal(err)
			}
			float, err := model.Load(p.Config(), floatSource{p})
			if err != nil {
				t.Fatal(err)
			}
			const name = "model.layers.0.mlp.language_mlp.down_proj.weight"
			entry, _ := p.Tensor(name)
			w := packed.Weights.Layers[0].LanguageDownProj
			if w.Encoding != entry.Encoding || w.GroupSize != entry.GroupSize {
				t.Errorf("%s held as %s (group %d), stored as %s (group %d)", name, w.Encoding, w.GroupSize, entry.Encoding, entry.GroupSize)
			}
			if mapped := runtime.GOOS == "linux"; mapped != (w.Owner != nil) {
				t.Errorf("%s: mapped %v on %s", name, w.Owner != nil, runtime.GOOS)
			}
			if _, ok := packed.Tensor(name); ok != (enc == quant.F32) {
				t.Errorf("Tensor(%q) found %v for a %s matrix", name, ok, enc)
			}
			p.Close()
			runtime.GC() // the mappings must outlive the package: the matrices hold them
			runtime.GC()
			for _, c := range cases {
				s := model.Sampling{MaxNewTokens: c.maxNew, KeepStepLogits: true}
				want, err := float.Generate(c.inputs, c.tensors["pixel_values"], s, nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := packed.Generate(c.inputs, c.tensors["pixel_values"], s, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got.GeneratedIDs, want.GeneratedIDs) || !slices.Equal(got.StepLogits, want.StepLogits) ||
					!slices.Equal(got.VisionOut, want.VisionOut) || !slices.Equal(got.PrefillHiddenLast, want.PrefillHiddenLast) {
					t.Errorf("%s: the packed model differs from the float32 one (tokens %v, want %v)", c.name, got.GeneratedIDs, want.GeneratedIDs)
				}
			}
		})
	}
}

// patchedPackage copies the golden package at enc and lets edit change the stored bytes
// of one tensor (its data, then its scales, as slices of the shard); the shard's hash in
// the manifest is updated, so only the values are wrong.
func patchedPackage(t *testing.T, enc quant.Encoding, tensor string, edit func(data, scales []byte)) string {
	t.Helper()
	src, dir := goldenPackage(t, enc), t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	e, ok := p.Tensor(tensor)
	if !ok {
		t.Fatalf("no tensor %q", tensor)
	}
	shard := p.Manifest().Shards[e.Shard]
	path := filepath.Join(dir, shard.File)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edit(b[e.Offset:e.Offset+e.Length], b[e.ScalesOffset:e.ScalesOffset+e.ScalesLength])
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	manifest := filepath.Join(dir, format.ManifestFileName)
	m, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifest, []byte(strings.Replace(string(m), shard.SHA256, hex.EncodeToString(sum[:]), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPackageNonFiniteRefused: a package whose stored weights hold a NaN or an infinity
// (a q4 scale, an f16 value, an f32 vector) is refused by the CPU reference with the
// tensor named, and `accuracy` fails instead of printing NaN (issue 14). A package whose
// weights are finite but overflow the activations fails accuracy too.
func TestPackageNonFiniteRefused(t *testing.T) {
	nanF16 := func(b []byte) { binary.LittleEndian.PutUint16(b, 0x7e00) }
	for _, tc := range []struct {
		name, tensor string
		enc          quant.Encoding
		edit         func(data, scales []byte)
		want         string
	}{
		{"q4 scale", "model.layers.1.mlp.vision_mlp.up_proj.weight", quant.Q4,
			func(_, scales []byte) { nanF16(scales[2*3:]) }, "the scale of row 1, inputs 32…63 is NaN"},
		{"q8 scale", "lm_head.weight", quant.Q8,
			func(_, scales []byte) { nanF16(scales) }, "the scale of row 0, inputs 0…31 is NaN"},
		{"f16 value", "model.vision.patch_embedding.proj.weight", quant.Q4,
			func(data, _ []byte) { binary.LittleEndian.PutUint16(data[2*5:], 0x7c00) }, "element 5 is +Inf"},
		{"f32 vector", "model.norm.weight", quant.Q4,
			func(data, _ []byte) { binary.LittleEndian.PutUint32(data[4*2:], math.Float32bits(float32(math.NaN()))) }, "element 2 is NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := patchedPackage(t, tc.enc, tc.tensor, tc.edit)
			_, err := OpenModel(dir)
			if err == nil || !strings.Contains(err.Error(), tc.tensor) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenModel: error %v, want one naming %s and %q", err, tc.tensor, tc.want)
			}
			c := loadGoldenCase(t, goldenCaseNames[0])
			cases := []AccuracyCase{{Name: c.name, Inputs: c.inputs, Pixels: c.tensors["pixel_values"], Steps: 2}}
			if report, err := Accuracy(goldenModelDir, dir, cases); err == nil || !strings.Contains(err.Error(), tc.tensor) {
				t.Errorf("Accuracy: report %+v, error %v; want an error naming %s", report, err, tc.tensor)
			}
		})
	}

	// finite weights whose activations overflow: the final norm's weights at 3e38
	dir := patchedPackage(t, quant.F32, "model.norm.weight", func(data, _ []byte) {
		for i := 0; i < len(data); i += 4 {
			binary.LittleEndian.PutUint32(data[i:], math.Float32bits(3e38))
		}
	})
	c := loadGoldenCase(t, goldenCaseNames[0])
	cases := []AccuracyCase{{Name: c.name, Inputs: c.inputs, Pixels: c.tensors["pixel_values"], Steps: 2}}
	if report, err := Accuracy(goldenModelDir, dir, cases); err == nil || !strings.Contains(err.Error(), "package step 0: logit") {
		t.Errorf("Accuracy with overflowing activations: report %+v, error %v; want an error naming the step", report, err)
	}
}

// TestHugeLayerCountRefused: a config.json saying 10⁹ layers next to a one-layer
// checkpoint is refused by convert and by the CPU reference with one line naming the key
// (issue 14: both ran out of memory in a 140-line trace).
func TestHugeLayerCountRefused(t *testing.T) {
	cfg := smallConfig()
	for _, key := range []string{"num_hidden_layers", "vision_config.num_hidden_layers"} {
		huge := cfg
		if key == "num_hidden_layers" {
			huge.NumHiddenLayers = 1e9
		} else {
			huge.Vision.NumHiddenLayers = 1e9
		}
		js, err := json.Marshal(huge)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "ckpt")
		writeSynthCheckpoint(t, dir, cfg, js, synthTensors(t, cfg, safetensors.BF16))
		want := key + " 1000000000 is beyond the limit"
		if err := Convert(dir, filepath.Join(t.TempDir(), "out"), ConvertOptions{}); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Convert: error %v, want one line containing %q", err, want)
		}
		if _, err := OpenModel(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenModel: error %v, want one containing %q", err, want)
		}
	}
}
