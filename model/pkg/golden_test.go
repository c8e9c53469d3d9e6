package pkg

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

const goldenDir = "../../testdata/golden"

var goldenModelDir = filepath.Join(goldenDir, "tiny-chat", "model")

// goldenCase is a case folder of testdata/golden: its prompt inputs and the float32
// reference outputs.
type goldenCase struct {
	name      string
	maxNew    int
	inputs    model.Inputs
	generated []int
	tensors   map[string][]float32 // expected.safetensors
}

func loadGoldenCase(t testing.TB, name string) *goldenCase {
	t.Helper()
	dir := filepath.Join(goldenDir, name)
	var input struct {
		MaxNewTokens int `json:"max_new_tokens"`
	}
	var expected struct {
		InputIDs     []int `json:"input_ids"`
		TokenTypeIDs []int `json:"token_type_ids"`
		PositionIDs  []int `json:"position_ids"`
		GeneratedIDs []int `json:"generated_ids"`
	}
	for file, dst := range map[string]any{"input.json": &input, "expected.json": &expected} {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, dst); err != nil {
			t.Fatalf("%s/%s: %v", name, file, err)
		}
	}
	c := &goldenCase{
		name: name, maxNew: input.MaxNewTokens, generated: expected.GeneratedIDs,
		inputs:  model.Inputs{InputIDs: expected.InputIDs, TokenTypeIDs: expected.TokenTypeIDs, PositionIDs: expected.PositionIDs},
		tensors: map[string][]float32{},
	}
	f, err := safetensors.Open(filepath.Join(dir, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range f.Names() {
		if c.tensors[n], _, err = f.ReadFloat32(n); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

var goldenCaseNames = []string{"tiny-chat", "tiny-text"}

// goldenPackages converts the golden checkpoint once per variant per test binary.
var goldenPackages struct {
	sync.Mutex
	dirs map[string]string
	root string
}

// goldenPackage is the golden checkpoint converted at encoding enc.
func goldenPackage(t testing.TB, enc quant.Encoding) string {
	return goldenPackageWith(t, string(enc), ConvertOptions{Quant: enc})
}

// calibratedQ4 names the golden q4 package converted with Calibrate.
const calibratedQ4 = "q4-calibrated"

// goldenCalibratedPackage is the golden checkpoint converted to q4 with Calibrate.
func goldenCalibratedPackage(t testing.TB) string {
	return goldenPackageWith(t, calibratedQ4, ConvertOptions{Quant: quant.Q4, Calibrate: true})
}

// goldenPackageWith converts the golden checkpoint with opts, once per name.
func goldenPackageWith(t testing.TB, name string, opts ConvertOptions) string {
	t.Helper()
	goldenPackages.Lock()
	defer goldenPackages.Unlock()
	if dir, ok := goldenPackages.dirs[name]; ok {
		return dir
	}
	if goldenPackages.dirs == nil {
		root, err := os.MkdirTemp("", "pkg-golden-")
		if err != nil {
			t.Fatal(err)
		}
		goldenPackages.root = root
		goldenPackages.dirs = map[string]string{}
	}
	dir := filepath.Join(goldenPackages.root, name)
	start := time.Now()
	if err := Convert(goldenModelDir, dir, opts); err != nil {
		t.Fatalf("Convert %s: %v", name, err)
	}
	t.Logf("converted the golden checkpoint to %s in %v", name, time.Since(start).Round(time.Millisecond))
	goldenPackages.dirs[name] = dir
	return dir
}

func TestMain(m *testing.M) {
	if childConvert() {
		return
	}
	code := m.Run()
	if goldenPackages.root != "" {
		os.RemoveAll(goldenPackages.root)
	}
	os.Exit(code)
}

// TestGoldenPackages converts the golden checkpoint at every encoding, and to q4 with
// calibration, and generates from each package: f32 must reproduce the reference exactly
// (same tokens, logits within the golden tolerance), q4 and q8 must keep the prefill
// logits close (minQ4Cosine, minCalibratedQ4Cosine, 0.999); every figure is logged
// (FORMAT.md quotes them).
func TestGoldenPackages(t *testing.T) {
	cases := make([]*goldenCase, len(goldenCaseNames))
	for i, name := range goldenCaseNames {
		cases[i] = loadGoldenCase(t, name)
	}
	variants := []string{calibratedQ4}
	for _, enc := range quant.Encodings {
		variants = append(variants, string(enc))
	}
	for _, variant := range variants {
		t.Run(variant, func(t *testing.T) {
			var dir string
			if variant == calibratedQ4 {
				dir = goldenCalibratedPackage(t)
			} else {
				dir = goldenPackage(t, quant.Encoding(variant))
			}
			p, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if err := p.Verify(); err != nil {
				t.Fatal(err)
			}
			m, err := model.Load(p.Config(), p)
			if err != nil {
				t.Fatal(err)
			}
			stats := p.Manifest().Stats()
			t.Logf("%s package: %d tensors, %d shards, %.3f bits/weight overall", variant, stats[""].Tensors, len(p.Manifest().Shards), stats[""].BitsPerWeight())
			for _, c := range cases {
				res, err := m.Generate(c.inputs, c.tensors["pixel_values"], model.Sampling{MaxNewTokens: c.maxNew, KeepStepLogits: true}, nil)
				if err != nil {
					t.Fatal(err)
				}
				want := c.tensors["prefill_logits_last"]
				cos := Cosine(res.PrefillLogitsLast, want)
				diff := maxAbsDiff(res.PrefillLogitsLast, want)
				agree := 0
				for k, id := range res.GeneratedIDs {
					if k < len(c.generated) && id == c.generated[k] {
						agree++
					}
				}
				t.Logf("%s %s: prefill logits cosine %.6f, max abs diff %.4g; %d/%d generated tokens equal the reference's",
					variant, c.name, cos, diff, agree, len(c.generated))
				switch variant {
				case string(quant.F32):
					if !slices.Equal(res.GeneratedIDs, c.generated) {
						t.Errorf("%s: generated %v, want %v", c.name, res.GeneratedIDs, c.generated)
					}
					if d := maxAbsDiff(res.StepLogits, c.tensors["step_logits"]); !(d <= 2e-4) {
						t.Errorf("%s: step logits differ from the reference by %.3g > 2e-4", c.name, d)
					}
				case string(quant.Q4):
					if min := minQ4Cosine[c.name]; !(cos >= min) {
						t.Errorf("%s: q4 prefill logits cosine %.5f < %g", c.name, cos, min)
					}
				case calibratedQ4:
					if min := minCalibratedQ4Cosine[c.name]; !(cos >= min) {
						t.Errorf("%s: calibrated q4 prefill logits cosine %.5f < %g", c.name, cos, min)
					}
				case string(quant.Q8):
					if !(cos >= 0.999) { // measured 0.99975 and 0.99993
						t.Errorf("%s: q8 prefill logits cosine %.5f < 0.999", c.name, cos)
					}
				}
			}
		})
	}
}
