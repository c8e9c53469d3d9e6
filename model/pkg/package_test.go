package pkg

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model/format"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// smallShardPackage converts the golden checkpoint into t's temp dir with 64 KiB shards.
func smallShardPackage(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pkg")
	if err := Convert(goldenModelDir, dir, ConvertOptions{ShardBytes: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tensorIn returns a tensor stored in shard number shard.
func tensorIn(t *testing.T, p *Package, shard int) format.TensorEntry {
	t.Helper()
	for _, e := range p.Manifest().Tensors {
		if e.Shard == shard {
			return e
		}
	}
	t.Fatalf("no tensor in shard %d", shard)
	return format.TensorEntry{}
}

// TestCorruptShardDetected: a flipped byte, a truncated, extended or missing shard fails
// every read from that shard, and Verify, with an error naming the shard; the other
// shards still read.
func TestCorruptShardDetected(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(path string) error
		want    string
	}{
		{"flipped byte", func(path string) error {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 0x10
			return os.WriteFile(path, b, 0o644)
		}, "SHA-256"},
		{"truncated", func(path string) error {
			st, err := os.Stat(path)
			if err != nil {
				return err
			}
			return os.Truncate(path, st.Size()-1)
		}, "the manifest says"},
		{"extended", func(path string) error {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			f.Write([]byte{0})
			return f.Close()
		}, "the manifest says"},
		{"missing", os.Remove, "missing from the package"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := smallShardPackage(t)
			p, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			const bad = 2
			shard := p.Manifest().Shards[bad].File
			if err := tc.corrupt(filepath.Join(dir, shard)); err != nil {
				t.Fatal(err)
			}
			victim, other := tensorIn(t, p, bad), tensorIn(t, p, bad+1)
			err = p.ReadFloat32(victim.Name, make([]float32, victim.Numel()))
			if err == nil || !strings.Contains(err.Error(), shard) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("reading %s: error %v, want one naming %s and containing %q", victim.Name, err, shard, tc.want)
			}
			if err := p.ReadFloat32(other.Name, make([]float32, other.Numel())); err != nil {
				t.Errorf("reading %s from an intact shard: %v", other.Name, err)
			}
			if err := p.Verify(); err == nil || !strings.Contains(err.Error(), shard) {
				t.Errorf("Verify: error %v, want one naming %s", err, shard)
			}
		})
	}
}

// TestOpenDetectsCorruptFiles: manifest.json and tokenizer.json are checked by Open.
func TestOpenDetectsCorruptFiles(t *testing.T) {
	for _, tc := range []struct {
		file string
		edit func([]byte) []byte
		want string
	}{
		{format.TokenizerFileName, func(b []byte) []byte { b[100] ^= 1; return b }, "tokenizer.json: SHA-256"},
		{format.TokenizerFileName, func(b []byte) []byte { return b[:len(b)/2] }, "tokenizer.json: "},
		{format.ManifestFileName, func(b []byte) []byte { return b[:len(b)-10] }, "manifest.json: bad JSON"},
	} {
		dir := smallShardPackage(t)
		path := filepath.Join(dir, tc.file)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, tc.edit(b), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s edited: Open error %v, want one containing %q", tc.file, err, tc.want)
		}
	}
}

func TestParseManifestErrors(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(goldenPackage(t, quant.Q4), format.ManifestFileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := format.ParseManifest(data); err != nil {
		t.Fatalf("the converter's own manifest: %v", err)
	}
	// index of a q4 tensor and of an f32 one
	m0, _, _ := format.ParseManifest(data)
	q4 := slices.IndexFunc(m0.Tensors, func(e format.TensorEntry) bool { return e.Encoding == quant.Q4 })
	f32 := slices.IndexFunc(m0.Tensors, func(e format.TensorEntry) bool { return e.Encoding == quant.F32 })
	for _, tc := range []struct {
		name string
		edit func(m *format.Manifest)
		want string
	}{
		{"format", func(m *format.Manifest) { m.Format = "gguf" }, `format "gguf" is not "cogvlm-web-package"`},
		{"newer version", func(m *format.Manifest) { m.FormatVersion = 2 }, "format_version 2 is not supported"},
		{"bad config", func(m *format.Manifest) { m.Config = json.RawMessage(`{"hidden_size": 0}`) }, "config: hidden_size 0 must be positive"},
		{"shard path", func(m *format.Manifest) { m.Shards[0].File = "../x.bin" }, `shard 0 file "../x.bin" is not a plain file name inside the package: it has the character '/'`},
		{"shard is the manifest", func(m *format.Manifest) { m.Shards[0].File = format.ManifestFileName }, "is not a plain file name"},
		{"duplicate file", func(m *format.Manifest) { m.Shards[0].File = format.TokenizerFileName }, `shard 0 file "tokenizer.json" is also tokenizer`},
		{"bad hash", func(m *format.Manifest) { m.Shards[0].SHA256 = "abc" }, "sha256 \"abc\" is not 64 lowercase hex digits"},
		{"unknown encoding", func(m *format.Manifest) { m.Tensors[f32].Encoding = "q3" }, `unknown encoding "q3"`},
		{"misaligned", func(m *format.Manifest) { m.Tensors[q4].Offset += 4 }, "data offset"},
		{"past the end", func(m *format.Manifest) { m.Tensors[q4].ScalesOffset = m.Shards[0].Size }, "runs past the end of shard"},
		{"overlap", func(m *format.Manifest) { m.Tensors[q4].ScalesOffset = m.Tensors[q4].Offset }, "overlaps"},
		{"wrong length", func(m *format.Manifest) { m.Tensors[q4].Length -= 4 }, "takes"},
		{"group does not divide K", func(m *format.Manifest) { m.Tensors[q4].GroupSize = 24 }, "not a multiple of the q4 group size 24"},
		{"q4 on 3-D", func(m *format.Manifest) { m.Tensors[q4].Shape = []int{2, 2, 16} }, "q4 needs a 2-D [n, k] shape"},
		{"scales on f32", func(m *format.Manifest) { m.Tensors[f32].ScalesLength = 4 }, "has no groups or scales"},
		{"no shard", func(m *format.Manifest) { m.Tensors[f32].Shard = len(m.Shards) }, "does not exist"},
		{"duplicate tensor", func(m *format.Manifest) { m.Tensors[f32].Name = m.Tensors[q4].Name }, "is listed twice"},
		{"zero dimension", func(m *format.Manifest) { m.Tensors[f32].Shape = []int{0} }, "dimensions must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, err := format.ParseManifest(data)
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(m)
			js, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := format.ParseManifest(js); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestManifestReadable: manifest.json puts the config, each shard and each tensor on a
// line of its own, and parses back to the same manifest.
func TestManifestReadable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(goldenPackage(t, quant.Q4), format.ManifestFileName))
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := format.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(string(data), "\n")
	if want := 4 + 2 + len(m.Shards) + 2 + len(m.Tensors) + 2; lines != want {
		t.Errorf("manifest.json has %d lines, want %d (one per shard and tensor)", lines, want)
	}
	for _, prefix := range []string{`  "format": "cogvlm-web-package",`, `  "config": {"architectures":["CogVLMForCausalLM"]`, `    {"name":"model.embed_tokens.weight","shape":[32000,64],"encoding":"q8","group_size":32,"shard":0,"offset":0,`} {
		if !strings.Contains(string(data), "\n"+prefix) {
			t.Errorf("manifest.json lacks a line starting %q", prefix)
		}
	}
	again, err := m.Encode()
	if err != nil || string(again) != string(data) {
		t.Errorf("re-encoding the parsed manifest changes it (err %v)", err)
	}
}

// TestOpenModel loads the reference from both kinds of folder.
func TestOpenModel(t *testing.T) {
	for _, dir := range []string{goldenModelDir, goldenPackage(t, quant.F32)} {
		m, err := OpenModel(dir)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if m.Config.HiddenSize != 64 {
			t.Errorf("%s: hidden_size %d", dir, m.Config.HiddenSize)
		}
	}
	if _, err := OpenModel(t.TempDir()); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("empty folder: error %v, want one naming config.json", err)
	}
}

// TestAccuracy runs the accuracy comparison the CLI exposes on the golden checkpoint and
// its q4 (plain and calibrated) and q8 packages, with the golden prompts.
func TestAccuracy(t *testing.T) {
	var cases []AccuracyCase
	for _, name := range goldenCaseNames {
		c := loadGoldenCase(t, name)
		cases = append(cases, AccuracyCase{Name: name, Inputs: c.inputs, Pixels: c.tensors["pixel_values"], Steps: c.maxNew})
	}
	for _, variant := range []string{string(quant.Q4), calibratedQ4, string(quant.Q8)} {
		var dir string
		if variant == calibratedQ4 {
			dir = goldenCalibratedPackage(t)
		} else {
			dir = goldenPackage(t, quant.Encoding(variant))
		}
		report, err := Accuracy(goldenModelDir, dir, cases)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %.3f bits per weight overall (q4 tensors %.3f, q8 %.3f)", variant, report.Stats[""].BitsPerWeight(),
			report.Stats[quant.Q4].BitsPerWeight(), report.Stats[quant.Q8].BitsPerWeight())
		for _, c := range report.Cases {
			t.Logf("%s %s: prefill cosine %.5f, lowest step cosine %.5f, max abs logit diff %.3f, top-1 agreement %d/%d (teacher-forced)",
				variant, c.Name, c.PrefillCosine, c.MinCosine, c.MaxAbsDiff, c.Top1Agree, c.Steps)
			if c.Steps != 12 {
				t.Errorf("%s %s: compared %d steps, want 12", variant, c.Name, c.Steps)
			}
			min := 0.999
			switch variant {
			case string(quant.Q4):
				min = minQ4Cosine[c.Name]
			case calibratedQ4:
				min = minCalibratedQ4Cosine[c.Name]
			}
			if !(c.PrefillCosine >= min) {
				t.Errorf("%s %s: prefill cosine %.5f < %g", variant, c.Name, c.PrefillCosine, min)
			}
			if variant == string(quant.Q8) && c.Top1Agree != c.Steps {
				t.Errorf("q8 %s: top-1 agreement %d/%d, want all", c.Name, c.Top1Agree, c.Steps)
			}
		}
	}
	if _, err := Accuracy(goldenModelDir, goldenPackage(t, quant.Q4), []AccuracyCase{{Name: "x", Inputs: cases[0].Inputs}}); err == nil {
		t.Error("a case with 0 steps was accepted")
	}
}

// TestPlanManifest: the planned manifest of the golden config is the one the converter
// writes, hashes aside.
func TestPlanManifest(t *testing.T) {
	dir := t.TempDir() + "/pkg"
	if err := Convert("../../testdata/golden/tiny-chat/model", dir, ConvertOptions{Quant: quant.Q4}); err != nil {
		t.Fatal(err)
	}
	p, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	planned, err := PlanManifest(p.Config(), ConvertOptions{Quant: quant.Q4})
	if err != nil {
		t.Fatal(err)
	}
	real := p.Manifest()
	if !reflect.DeepEqual(planned.Tensors, real.Tensors) {
		t.Errorf("planned tensors differ from the converted package's")
	}
	if len(planned.Shards) != len(real.Shards) {
		t.Fatalf("planned %d shards, converted %d", len(planned.Shards), len(real.Shards))
	}
	for i, s := range planned.Shards {
		if s.File != real.Shards[i].File || s.Size != real.Shards[i].Size {
			t.Errorf("shard %d planned %s %d bytes, converted %s %d", i, s.File, s.Size, real.Shards[i].File, real.Shards[i].Size)
		}
	}
}
