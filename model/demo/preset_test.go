package demo

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/pkg"
)

func mustPlan(t *testing.T, opts Options) *Plan {
	t.Helper()
	p, err := NewPlan(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The full-depth plan of cogvlm-chat-hf writes the published index byte for byte: the
// same tensor names, the same tensor→shard assignment, the same total_size.
func TestPlanMatchesPublishedIndex(t *testing.T) {
	want, err := os.ReadFile("testdata/cogvlm-chat-hf.index.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cogvlm-chat-hf", "cogvlm-base-490-hf", "cogvlm-grounding-generalist-hf"} {
		p := mustPlan(t, Options{Preset: name})
		got, err := json.MarshalIndent(p.index(), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if string(append(got, '\n')) != string(want) {
			var w struct {
				WeightMap map[string]string `json:"weight_map"`
			}
			json.Unmarshal(want, &w)
			gotMap := p.WeightMap()
			for n, f := range w.WeightMap {
				if gotMap[n] != f {
					t.Errorf("%s: %s is in %q, published in %q", name, n, gotMap[n], f)
				}
			}
			t.Errorf("%s: index differs from the published one (%d entries, published %d; total_size %d)", name, len(gotMap), len(w.WeightMap), p.TotalSize)
		}
	}
	// base-224 differs only in the position embedding (257 rows instead of 1226)
	p224 := mustPlan(t, Options{Preset: "cogvlm-base-224-hf"})
	if p224.TotalSize != 35275901952 {
		t.Errorf("base-224 total_size %d", p224.TotalSize)
	}
	if !reflect.DeepEqual(p224.WeightMap(), mustPlan(t, Options{Preset: "cogvlm-chat-hf"}).WeightMap()) {
		t.Error("base-224's tensor→shard map differs from chat's (published: the same)")
	}
}

// The shard sizes as huggingface.co lists them for all four checkpoints.
func TestPlanShardSizes(t *testing.T) {
	published := []string{"4.94 GB", "4.95 GB", "4.95 GB", "4.99 GB", "4.99 GB", "4.97 GB", "4.96 GB", "533 MB"}
	for _, name := range PresetNames()[1:] {
		p := mustPlan(t, Options{Preset: name})
		sizes := make([]int64, len(p.Shards))
		for _, tn := range p.Tensors {
			sizes[tn.Shard] += tn.Bytes()
		}
		var got []string
		for _, s := range sizes {
			if s >= 1e9 {
				got = append(got, fmt.Sprintf("%.2f GB", float64(s)/1e9))
			} else {
				got = append(got, fmt.Sprintf("%.0f MB", float64(s)/1e6))
			}
		}
		if !slices.Equal(got, published) {
			t.Errorf("%s: shards %v, published %v", name, got, published)
		}
	}
}

// Every plan holds exactly model.TensorSpecs (names and shapes) plus one inv_freq buffer
// per decoder layer, all BF16, whatever the layer counts.
func TestPlanTensorsAreTheModels(t *testing.T) {
	for _, name := range PresetNames()[1:] {
		for _, layers := range [][2]int{{0, 0}, {1, 1}, {3, 2}} {
			p := mustPlan(t, Options{Preset: name, Layers: layers[0], VisionLayers: layers[1]})
			specs, err := model.TensorSpecs(p.Config)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]int{}
			for _, s := range specs {
				want[s.Name] = s.Shape
			}
			for l := range p.Config.NumHiddenLayers {
				want[model.RotaryInvFreqName(l)] = []int{p.Config.HeadDim() / 2}
			}
			got := map[string][]int{}
			for _, tn := range p.Tensors {
				if tn.DType != "BF16" {
					t.Errorf("%s: %s is %s", name, tn.Name, tn.DType)
				}
				got[tn.Name] = tn.Shape
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %v: %d tensors, want %d", name, layers, len(got), len(want))
			}
			if layers[0] > 0 && p.Config.NumHiddenLayers != layers[0] || layers[1] > 0 && p.Config.Vision.NumHiddenLayers != layers[1] {
				t.Errorf("%s %v: config has %d/%d layers", name, layers, p.Config.NumHiddenLayers, p.Config.Vision.NumHiddenLayers)
			}
			if n := len(p.Shards); n < 1 || n > 8 {
				t.Errorf("%s %v: %d shards", name, layers, n)
			}
		}
	}
}

// config.json is the published file: the same size (huggingface.co's listing) and it
// reads back as the plan's config; the variants differ only where the published ones do.
func TestPresetConfigJSON(t *testing.T) {
	for _, tc := range []struct {
		preset      string
		bytes       int
		template    string
		imageTokens int // boi + grid² + eoi
	}{
		{"cogvlm-chat-hf", 994, "chat", 1227},
		{"cogvlm-base-490-hf", 993, "base", 1227},
		{"cogvlm-base-224-hf", 992, "base", 258},
		{"cogvlm-grounding-generalist-hf", 1005, "base", 1227},
	} {
		p := mustPlan(t, Options{Preset: tc.preset})
		js := p.ConfigJSON()
		if len(js) != tc.bytes {
			t.Errorf("%s: config.json is %d bytes, published %d", tc.preset, len(js), tc.bytes)
		}
		path := t.TempDir() + "/config.json"
		os.WriteFile(path, js, 0o644)
		cfg, err := model.LoadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cfg, p.Config) {
			t.Errorf("%s: config.json reads back as %+v, want %+v", tc.preset, cfg, p.Config)
		}
		if cfg.TemplateVersion != tc.template || cfg.NumPatches()+2 != tc.imageTokens {
			t.Errorf("%s: template %q, %d image tokens", tc.preset, cfg.TemplateVersion, cfg.NumPatches()+2)
		}
		for _, s := range []string{`"rms_norm_eps": 1e-05`, `"layer_norm_eps": 1e-06`, `"dropout_prob": 0.0`} {
			if !strings.Contains(string(js), s) {
				t.Errorf("%s: config.json lacks %s", tc.preset, s)
			}
		}
		one := mustPlan(t, Options{Preset: tc.preset, Layers: 1, VisionLayers: 2})
		if !strings.Contains(string(one.ConfigJSON()), `"num_hidden_layers": 1,`) || !strings.Contains(string(one.ConfigJSON()), `"num_hidden_layers": 2,`) {
			t.Errorf("%s: layer counts not overridden:\n%s", tc.preset, one.ConfigJSON())
		}
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Preset: "cogvlm-chat"}, `unknown preset "cogvlm-chat"`},
		{Options{Preset: "cogvlm-chat-hf", Layers: 33}, "layers 33 out of range 1…32"},
		{Options{Preset: "cogvlm-base-224-hf", VisionLayers: 64}, "vision layers 64 out of range 1…63"},
		{Options{Layers: -1}, "layers -1 out of range"},
	} {
		if _, err := NewPlan(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.opts, err, tc.want)
		}
		if err := Generate(t.TempDir()+"/x", tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Generate %+v: %v, want %q", tc.opts, err, tc.want)
		}
	}
}

// The table draws are normal at the asked mean and std, and fillBF16 is deterministic.
func TestFillBF16(t *testing.T) {
	out := make([]byte, 2*100003) // not a multiple of 4 values
	for _, c := range []struct{ mean, std float64 }{{0, 1 / math.Sqrt(4096)}, {1, 0.2}, {0, 1}} {
		fillBF16(out, bf16Table(c.mean, c.std), 7)
		v := decodeBF16(out)
		mean, std := stats(v)
		if math.Abs(mean-c.mean) > 4*c.std/math.Sqrt(float64(len(v))) || math.Abs(std/c.std-1) > 0.01 {
			t.Errorf("mean %g std %g, want %g, %g", mean, std, c.mean, c.std)
		}
		again := make([]byte, len(out))
		fillBF16(again, bf16Table(c.mean, c.std), 7)
		if string(again) != string(out) {
			t.Error("fillBF16 is not deterministic")
		}
	}
}

func decodeBF16(b []byte) []float32 {
	v := make([]float32, len(b)/2)
	for i := range v {
		v[i] = math.Float32frombits(uint32(b[2*i])<<16 | uint32(b[2*i+1])<<24)
	}
	return v
}

// TestPresetFigures logs, per published preset, the figures README.md and DESIGN.md
// quote: parameters, image tokens, the q4 package (pkg.PlanManifest, as `convert`
// writes it) and the bytes one decode step reads. Run with -v to see them.
func TestPresetFigures(t *testing.T) {
	for _, name := range PresetNames()[1:] {
		p := mustPlan(t, Options{Preset: name})
		m, err := pkg.PlanManifest(p.Config, pkg.ConvertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var params, size, decode int64
		for _, tn := range m.Tensors {
			params += tn.Numel()
			if strings.HasPrefix(tn.Name, "model.layers.") && !strings.Contains(tn.Name, "vision") || tn.Name == "lm_head.weight" || tn.Name == "model.norm.weight" {
				decode += tn.Bytes()
			}
		}
		for _, s := range m.Shards {
			size += s.Size
		}
		t.Logf("%s: %.3f B parameters, %d image tokens, checkpoint %.2f GB (bf16), q4 package %.3f GB in %d shards, %.2f GB read per decoded token",
			name, float64(params)/1e9, p.Config.NumPatches()+2, float64(p.TotalSize)/1e9, float64(size)/1e9, len(m.Shards), float64(decode)/1e9)
		if size < 9.5e9 || size > 11e9 {
			t.Errorf("%s: q4 package %d bytes, want about 10 GB", name, size)
		}
	}
}
