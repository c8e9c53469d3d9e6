package demo

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
)

// written holds the demo checkpoints written so far, by key: writing is the slow part.
var written = map[string]string{}

func demoDir(t *testing.T, key string) string {
	t.Helper()
	if dir, ok := written[key]; ok {
		return dir
	}
	root, err := os.MkdirTemp("", "demo-test-")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "demo")
	if key == "b" { // an existing empty folder is fine too
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	written[key] = dir
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range written {
		os.RemoveAll(filepath.Dir(dir))
	}
	os.Exit(code)
}

func TestDeterministic(t *testing.T) {
	a, b := demoDir(t, "a"), demoDir(t, "b")
	filesA, filesB := listFiles(t, a), listFiles(t, b)
	want := []string{
		"config.json", "generation_config.json",
		"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
		"model.safetensors.index.json", "special_tokens_map.json",
		"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
	}
	if !reflect.DeepEqual(filesA, want) || !reflect.DeepEqual(filesB, want) {
		t.Fatalf("files %v and %v, want %v", filesA, filesB, want)
	}
	for _, name := range want {
		da, _ := os.ReadFile(filepath.Join(a, name))
		db, _ := os.ReadFile(filepath.Join(b, name))
		if !bytes.Equal(da, db) {
			t.Errorf("%s differs between two runs", name)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(a)); len(entries) != 1 {
		t.Errorf("temporary folders left next to the checkpoint: %v", entries)
	}
}

func listFiles(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestLoadsAsCogVLM(t *testing.T) {
	dir := demoDir(t, "a")
	cfg, err := model.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Config) {
		t.Errorf("config.json reads back as\n%+v\nwant\n%+v", cfg, Config)
	}
	if cfg.NumPatches() != 16 {
		t.Errorf("NumPatches = %d, want a 4×4 grid", cfg.NumPatches())
	}
	ckpt, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ckpt.Close()
	shards := map[string]bool{}
	for _, name := range ckpt.Names() {
		info, shard, _ := ckpt.Info(name)
		shards[filepath.Base(shard)] = true
		if info.DType != safetensors.BF16 {
			t.Errorf("%s is %s, want BF16", name, info.DType)
		}
	}
	if len(shards) != 2 {
		t.Errorf("tensors spread over %d shards, want 2", len(shards))
	}
	w, err := model.LoadWeights(cfg, ckpt) // checks every name and shape
	if err != nil {
		t.Fatal(err)
	}
	// The recipe of the golden README: the checks would fail if a tensor got another
	// tensor's scale or the generator stopped being normal.
	for _, tc := range []struct {
		name      string
		v         []float32
		mean, std float64
	}{
		{"model.embed_tokens.weight", w.EmbedTokens.F32, 0, 1},
		{"lm_head.weight", w.LMHead.F32, 0, 0.5},
		{"model.layers.0.self_attn.language_expert_query_key_value.weight", w.Layers[0].LanguageQueryKeyValue.F32, 0, 1 / 8.0},
		{"model.layers.1.mlp.vision_mlp.down_proj.weight", w.Layers[1].VisionDownProj.F32, 0, 1 / math.Sqrt(176)},
		{"model.vision.patch_embedding.proj.weight", w.Vision.PatchWeight.F32, 0, 1 / math.Sqrt(3*14*14)},
		{"model.vision.patch_embedding.position_embedding.weight", w.Vision.PositionEmbedding, 0, 0.5},
		{"model.vision.transformer.layers.0.mlp.fc1.bias", w.Vision.Layers[0].FC1Bias, 0, 0.1},
		{"model.vision.transformer.layers.0.attention.query_key_value.bias", w.Vision.Layers[0].QueryKeyValueBias, 0, 0.2},
		{"model.layers.0.input_layernorm.weight", w.Layers[0].InputLayernorm, 1, 0.2},
		{"model.vision.linear_proj.norm1.weight", w.Adapter.Norm1Weight, 1, 0.2},
	} {
		mean, std := stats(tc.v)
		// sampling error of the mean is std/sqrt(n); allow 4 of them, and 15% on std
		if math.Abs(mean-tc.mean) > 4*tc.std/math.Sqrt(float64(len(tc.v))) || math.Abs(std/tc.std-1) > 0.15 {
			t.Errorf("%s: mean %.4f std %.4f, want %.4f ± %.4f", tc.name, mean, std, tc.mean, tc.std)
		}
	}
}

func stats(v []float32) (mean, std float64) {
	for _, x := range v {
		mean += float64(x)
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (float64(x) - mean) * (float64(x) - mean)
	}
	return mean, math.Sqrt(std / float64(len(v)))
}

func TestWriteRefusesNonEmptyFolder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("mine"), 0o644)
	err := Write(dir)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Write into a non-empty folder: err = %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "keep.txt")); string(got) != "mine" {
		t.Error("Write touched the existing folder")
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
		t.Errorf("left %d entries next to the folder", len(entries)-1)
	}
}

func TestDistributionCoversEveryTensor(t *testing.T) {
	specs, err := model.TensorSpecs(Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if _, std, err := distribution(s.Name, s.Shape, Config); err != nil || !(std > 0) {
			t.Errorf("%s: std %v, %v", s.Name, std, err)
		}
	}
	if _, _, err := distribution("model.vision.mystery", []int{4}, Config); err == nil || !strings.Contains(err.Error(), "model.vision.mystery") {
		t.Errorf("unknown tensor: err = %v", err)
	}
}

// The written tokenizer.json is the same tokenizer as the embedded tokenizer.model: the
// ids SentencePiece gives for the golden tokenizer strings.
func TestTokenizerJSON(t *testing.T) {
	dir := demoDir(t, "a")
	tok, err := tokenizer.LoadJSON(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../../testdata/golden/tokenizer/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Text string `json:"text"`
		IDs  []int  `json:"ids"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
			t.Errorf("%q: %v, want %v", c.Text, got, c.IDs)
		}
	}
	if tok.VocabSize() != 32000 || tok.EOS() != 2 {
		t.Errorf("vocab %d, eos %d", tok.VocabSize(), tok.EOS())
	}
}
