//go:build js && wasm

package engine

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

// randomConfigs is where ./build.sh puts the property test's packages: randomly drawn
// small configs (internal/cmd/randmodel), converted to q4 where the sizes allow, else f32,
// with the CPU reference's greedy tokens (SEED-ENC.text.json, SEED-ENC.image.json).
const randomConfigs = testPackages + "random/"

// TestRandomConfigs is the property test of "the GPU engine runs every config the CPU
// reference accepts": for each drawn config (hidden sizes that are no multiple of 64 or
// even 4, odd head counts, head_dim ≡ 2 mod 4, odd vision head dims, a vision width other
// than the language model's, q4 groups under 32, images of one to 25 patches) and each
// package of it, the GPU answers a text and an image prompt with exactly the CPU
// reference's tokens. RANDOM_CONFIG_SEEDS="…" ./build.sh test draws other configs; to rerun
// this test alone on packages made so, see build.sh's make_random_config_packages.
func TestRandomConfigs(t *testing.T) {
	list, err := FetchText(randomConfigs + "packages.txt")
	if err != nil {
		t.Fatalf("%v (the packages are made by ./build.sh test)", err)
	}
	names := strings.Fields(list)
	if len(names) == 0 {
		t.Fatal(randomConfigs + "packages.txt lists no package")
	}
	image := fetchBytes(t, "/repo/testdata/golden/tiny-chat/image.png")
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			text := loadGolden(t, randomConfigs+name+".text.json")
			img := loadGolden(t, randomConfigs+name+".image.json")
			var cfg model.Config
			// The app's f16 cache everywhere; the f32 one (the CPU reference's) too on the
			// quantized packages, whose decode steps cost a fraction of an f32 package's
			// (whose f32 lm_head of 32000 rows dominates a step on SwiftShader).
			kvs := []kernels.KVPrecision{kernels.KVF16}
			if !strings.HasSuffix(name, "-f32") {
				kvs = append(kvs, kernels.KVF32)
			}
			for _, kv := range kvs {
				s := testSessionKV(t, "random/"+name, kv)
				cfg = s.Cfg
				for _, c := range []struct {
					what string
					req  Request
					want goldenCase
				}{
					{"text", Request{Query: "The quick brown fox", Template: "base", Sampling: model.Sampling{MaxNewTokens: 8}}, text},
					{"image", Request{Image: image, Query: "What is in this image?", Template: "chat", Sampling: model.Sampling{MaxNewTokens: 8}}, img},
				} {
					res, err := s.Generate(c.req, nil)
					if err != nil {
						t.Fatalf("%s, kv %s: %v", c.what, kv, err)
					}
					if !slices.Equal(res.InputIDs, c.want.InputIDs) {
						t.Errorf("%s, kv %s: input ids %v\nCPU reference %v", c.what, kv, res.InputIDs, c.want.InputIDs)
					}
					if !slices.Equal(res.TokenIDs, c.want.GeneratedIDs) {
						t.Errorf("%s, kv %s: generated %v\nCPU reference %v", c.what, kv, res.TokenIDs, c.want.GeneratedIDs)
					}
				}
			}
			t.Logf("%s (%v)", describe(cfg), time.Since(start).Round(time.Millisecond))
		})
	}
}

// describe names a config's sizes for the test log.
func describe(c model.Config) string {
	v := c.Vision
	return fmt.Sprintf("hidden %d = %d heads × %d, intermediate %d, %d layers; vision %d = %d heads × %d, intermediate %d, %d layers, %d×%d patches",
		c.HiddenSize, c.NumAttentionHeads, c.HeadDim(), c.IntermediateSize, c.NumHiddenLayers,
		v.HiddenSize, v.NumHeads, v.HeadDim(), v.IntermediateSize, v.NumHiddenLayers, c.VisionGrid(), c.VisionGrid())
}
