//go:build js && wasm

package engine

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

// The packages are converted from testdata/golden by ./build.sh before the browser tests
// (cogvlm convert into .bin/testpkg); the test runner serves the repository under /repo/.
const testPackages = "/repo/.bin/testpkg/"

type goldenCase struct {
	InputIDs     []int `json:"input_ids"`
	TokenTypeIDs []int `json:"token_type_ids"`
	PositionIDs  []int `json:"position_ids"`
	GeneratedIDs []int `json:"generated_ids"`
}

func loadGolden(t *testing.T, url string) goldenCase {
	t.Helper()
	text, err := FetchText(url)
	if err != nil {
		t.Fatal(err)
	}
	var g goldenCase
	if err := json.Unmarshal([]byte(text), &g); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return g
}

// generate runs greedy decoding of n tokens on the GPU.
func generate(t *testing.T, d *Decoder, in model.Inputs, n int) []int {
	t.Helper()
	tok, err := d.Prefill(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := []int{tok}
	for len(out) < n {
		if tok, err = d.Decode(); err != nil {
			t.Fatal(err)
		}
		out = append(out, tok)
	}
	return out
}

func loadTestPackage(t *testing.T, k *kernels.Kernels, name string) *Package {
	t.Helper()
	p, err := LoadPackage(k, testPackages+name+"/manifest.json", nil)
	if err != nil {
		t.Fatalf("%v (the packages are made by ./build.sh test)", err)
	}
	return p
}

// kvPrecisions runs f once per KV-cache precision, as a subtest.
func kvPrecisions(t *testing.T, f func(t *testing.T, kv kernels.KVPrecision)) {
	for _, kv := range []kernels.KVPrecision{kernels.KVF32, kernels.KVF16} {
		t.Run("kv "+kv.String(), func(t *testing.T) { f(t, kv) })
	}
}

// TestDecoderGoldenText: the text-only golden case generates the golden tokens on the GPU
// from the f32 package, with the KV cache in f32 and in f16.
func TestDecoderGoldenText(t *testing.T) { kvPrecisions(t, testDecoderGoldenText) }

func testDecoderGoldenText(t *testing.T, kv kernels.KVPrecision) {
	k := testKernels(t)
	p := loadTestPackage(t, k, "tiny-f32")
	defer p.Release()
	g := loadGolden(t, "/repo/testdata/golden/tiny-text/expected.json")
	d, err := NewDecoder(k, p, 64, 16, kv)
	if err != nil {
		t.Fatal(err)
	}
	in := model.Inputs{InputIDs: g.InputIDs, TokenTypeIDs: g.TokenTypeIDs, PositionIDs: g.PositionIDs}
	got := generate(t, d, in, len(g.GeneratedIDs))
	if !slices.Equal(got, g.GeneratedIDs) {
		t.Errorf("generated %v\nwant      %v", got, g.GeneratedIDs)
	}
	// A second request on the same session starts from an empty cache.
	if again := generate(t, d, in, 4); !slices.Equal(again, g.GeneratedIDs[:4]) {
		t.Errorf("second request generated %v, want %v", again, g.GeneratedIDs[:4])
	}
}

// TestDecoderQ4Package: from the q4 package (q4 layers, q8 embedding and lm_head) the GPU
// generates exactly the tokens the CPU reference generates from that package
// (tiny-q4.text.json, written by ./build.sh with `cogvlm generate --json`), with the KV
// cache in f32 and in f16.
func TestDecoderQ4Package(t *testing.T) { kvPrecisions(t, testDecoderQ4Package) }

func testDecoderQ4Package(t *testing.T, kv kernels.KVPrecision) {
	k := testKernels(t)
	p := loadTestPackage(t, k, "tiny-q4")
	defer p.Release()
	ref := loadGolden(t, testPackages+"tiny-q4.text.json")
	if len(ref.GeneratedIDs) == 0 {
		t.Fatal("tiny-q4.text.json has no generated ids")
	}
	d, err := NewDecoder(k, p, 64, 16, kv)
	if err != nil {
		t.Fatal(err)
	}
	in := model.Inputs{InputIDs: ref.InputIDs, TokenTypeIDs: ref.TokenTypeIDs, PositionIDs: ref.PositionIDs}
	if got := generate(t, d, in, len(ref.GeneratedIDs)); !slices.Equal(got, ref.GeneratedIDs) {
		t.Errorf("generated %v\nCPU reference %v", got, ref.GeneratedIDs)
	}
}

// TestDecoderSplitAttention: with decode attention split over the sequence (partitions
// of 64 keys over a 192-token cache) the golden tokens are unchanged, with either KV cache.
func TestDecoderSplitAttention(t *testing.T) { kvPrecisions(t, testDecoderSplitAttention) }

func testDecoderSplitAttention(t *testing.T, kv kernels.KVPrecision) {
	defer func(v int) { decodePartKeys = v }(decodePartKeys)
	decodePartKeys = 64
	k := testKernels(t)
	p := loadTestPackage(t, k, "tiny-f32")
	defer p.Release()
	g := loadGolden(t, "/repo/testdata/golden/tiny-text/expected.json")
	d, err := NewDecoder(k, p, 192, 16, kv)
	if err != nil {
		t.Fatal(err)
	}
	if d.partKeys != 64 {
		t.Fatalf("decode attention not split (part keys %d)", d.partKeys)
	}
	in := model.Inputs{InputIDs: g.InputIDs, TokenTypeIDs: g.TokenTypeIDs, PositionIDs: g.PositionIDs}
	if got := generate(t, d, in, len(g.GeneratedIDs)); !slices.Equal(got, g.GeneratedIDs) {
		t.Errorf("generated %v\nwant      %v", got, g.GeneratedIDs)
	}
}
