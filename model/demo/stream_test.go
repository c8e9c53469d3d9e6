package demo

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/pkg"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

// smallPreset has the published layout at small widths: the streaming writer's tests
// run on it in a moment (its tensors still span several chunks).
func smallPreset() Preset {
	cfg := Config
	cfg.HiddenSize, cfg.IntermediateSize = 128, 352
	cfg.Vision.IntermediateSize = 2048
	return Preset{Name: "small", NameOrPath: "small", Config: cfg}
}

// checkWritten holds a written checkpoint to its plan: the files, the index, every
// shard's header (names, dtypes, shapes, data in name order), the inv_freq values.
func checkWritten(t *testing.T, dir string, p *Plan) {
	t.Helper()
	want := append([]string{"config.json", "generation_config.json"}, p.Shards...)
	want = append(want, "model.safetensors.index.json", "special_tokens_map.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json")
	if got := listFiles(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	if js, _ := os.ReadFile(filepath.Join(dir, "config.json")); !bytes.Equal(js, p.ConfigJSON()) {
		t.Error("config.json is not the plan's")
	}
	var index struct {
		Metadata struct {
			TotalSize int64 `json:"total_size"`
		} `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	js, _ := os.ReadFile(filepath.Join(dir, safetensors.IndexFileName))
	if err := json.Unmarshal(js, &index); err != nil {
		t.Fatal(err)
	}
	if index.Metadata.TotalSize != p.TotalSize || !reflect.DeepEqual(index.WeightMap, p.WeightMap()) {
		t.Errorf("index: total_size %d (plan %d), weight_map of %d", index.Metadata.TotalSize, p.TotalSize, len(index.WeightMap))
	}
	var data int64
	for i, shard := range p.Shards {
		f, err := safetensors.Open(filepath.Join(dir, shard))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, ti := range p.shardTensors(i) {
			tn := p.Tensors[ti]
			names = append(names, tn.Name)
			info, ok := f.Info(tn.Name)
			if !ok || info.DType != safetensors.BF16 || !slices.Equal(info.Shape, tn.Shape) {
				t.Errorf("%s: %s is %+v, planned %v BF16", shard, tn.Name, info, tn.Shape)
				continue
			}
			data += info.Size
			if _, ok := model.RotaryInvFreqLayer(tn.Name); ok {
				v, shape, err := f.ReadFloat32(tn.Name)
				if err != nil {
					t.Fatal(err)
				}
				if err := model.CheckRotaryInvFreq(p.Config, tn.Name, shape, v); err != nil {
					t.Error(err)
				}
			}
		}
		if got := f.Names(); len(got) != len(names) {
			t.Errorf("%s holds %d tensors, planned %d", shard, len(got), len(names))
		}
		f.Close()
	}
	if data != p.TotalSize {
		t.Errorf("shards hold %d bytes, planned %d", data, p.TotalSize)
	}
}

// The streamed checkpoint is its plan, the same bytes whatever the number of cores, and
// it converts (its inv_freq buffers checked and dropped).
func TestGenerateStreams(t *testing.T) {
	pre := smallPreset()
	for _, layers := range [][2]int{{2, 2}, {1, 1}} {
		cfg := pre.Config
		cfg.NumHiddenLayers, cfg.Vision.NumHiddenLayers = layers[0], layers[1]
		p, err := newPlan(pre, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var dirs []string
		for _, procs := range []int{1, 3} {
			old := runtime.GOMAXPROCS(procs)
			dir := t.TempDir()
			var last, total int64
			err := p.write(dir, func(done, tot int64) { last, total = done, tot })
			runtime.GOMAXPROCS(old)
			if err != nil {
				t.Fatal(err)
			}
			if last != p.TotalSize || total != p.TotalSize {
				t.Errorf("progress ended at %d of %d, want %d", last, total, p.TotalSize)
			}
			checkWritten(t, dir, p)
			dirs = append(dirs, dir)
		}
		for _, s := range p.Shards {
			a, _ := os.ReadFile(filepath.Join(dirs[0], s))
			b, _ := os.ReadFile(filepath.Join(dirs[1], s))
			if !bytes.Equal(a, b) {
				t.Errorf("%v layers: %s differs between 1 and 3 cores", layers, s)
			}
		}
		if err := pkg.Convert(dirs[0], filepath.Join(t.TempDir(), "pkg"), pkg.ConvertOptions{}); err != nil {
			t.Errorf("convert: %v", err)
		}
	}
}

// TestGenerateRealPreset writes `--preset cogvlm-chat-hf --layers 1 --vision-layers 1`
// (1.76 GB at the real widths) and holds it to the plan. It takes about 15 s and the disk
// space: run with COGVLM_PRESET_TESTS=1.
func TestGenerateRealPreset(t *testing.T) {
	if os.Getenv("COGVLM_PRESET_TESTS") == "" {
		t.Skip("writes 1.76 GB: set COGVLM_PRESET_TESTS=1")
	}
	opts := Options{Preset: "cogvlm-chat-hf", Layers: 1, VisionLayers: 1}
	dir := filepath.Join(t.TempDir(), "chat")
	if err := Generate(dir, opts); err != nil {
		t.Fatal(err)
	}
	p := mustPlan(t, opts)
	checkWritten(t, dir, p)
	// a sample of the drawn scales: trained-like, so 32 layers stay finite
	f, err := safetensors.Open(filepath.Join(dir, p.Shards[p.Tensors[slices.IndexFunc(p.Tensors, func(tn PlannedTensor) bool {
		return strings.HasSuffix(tn.Name, "language_expert_query_key_value.weight")
	})].Shard]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, _, err := f.ReadFloat32("model.layers.0.self_attn.language_expert_query_key_value.weight")
	if err != nil {
		t.Fatal(err)
	}
	if _, std := stats(v); std < 0.0154 || std > 0.0159 { // 1/sqrt(4096) = 0.015625
		t.Errorf("language qkv std %g, want 1/64", std)
	}
}

// planSource reads a plan's tensors as Generate draws them, without writing a file (the
// inv_freq buffers left out).
type planSource struct{ p *Plan }

func (s planSource) index(name string) int {
	return slices.IndexFunc(s.p.Tensors, func(t PlannedTensor) bool { return t.Name == name })
}

func (s planSource) Names() []string {
	var names []string
	for _, t := range s.p.Tensors {
		if _, ok := model.RotaryInvFreqLayer(t.Name); !ok {
			names = append(names, t.Name)
		}
	}
	return names
}

func (s planSource) Shape(name string) ([]int, bool) {
	if i := s.index(name); i >= 0 {
		return s.p.Tensors[i].Shape, true
	}
	return nil, false
}

func (s planSource) ReadFloat32(name string, dst []float32) error {
	i := s.index(name)
	src, err := s.p.source(i)
	if err != nil {
		return err
	}
	buf := make([]byte, s.p.Tensors[i].Bytes())
	for k := 0; k*2*chunkValues < len(buf); k++ {
		src.fill(k, buf[k*2*chunkValues:min(len(buf), (k+1)*2*chunkValues)])
	}
	copy(dst, decodeBF16(buf))
	return nil
}

// The drawn scales keep the real depth finite and the logits varied: a preset's 32 decoder
// and 63 vision layers at small widths (the scales follow the fan-in, so depth is what
// matters), with an image, greedy.
func TestPresetScalesStayFinite(t *testing.T) {
	cfg := realConfig("chat", 56)
	cfg.HiddenSize, cfg.IntermediateSize, cfg.NumAttentionHeads = 256, 688, 4
	cfg.Vision.HiddenSize, cfg.Vision.IntermediateSize, cfg.Vision.NumHeads = 128, 512, 2
	p, err := newPlan(Preset{Name: "deep", NameOrPath: "deep", Config: cfg}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(cfg, planSource{p})
	if err != nil {
		t.Fatal(err)
	}
	pixels := make([]float32, 3*56*56)
	for i := range pixels {
		pixels[i] = float32(math.Sin(float64(i) * 0.37))
	}
	in := model.BuildInputs([]int{894, 29901, 1724, 338, 297, 445, 1967, 29973, 673, 29901}, true, cfg)
	res, err := m.Generate(in, pixels, model.Sampling{MaxNewTokens: 8}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range [][]float32{res.VisionOut, res.PrefillHiddenLast, res.PrefillLogitsLast} {
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("non-finite activation %g", x)
			}
		}
	}
	_, std := stats(res.PrefillLogitsLast)
	distinct := map[int]bool{}
	for _, id := range res.GeneratedIDs {
		distinct[id] = true
	}
	t.Logf("logit std %.2f, generated %v", std, res.GeneratedIDs)
	if std < 0.5 || std > 50 || len(distinct) < 2 {
		t.Errorf("logit std %.2f, generated %v: want varied tokens", std, res.GeneratedIDs)
	}
}
