//go:build js && wasm

package engine

import (
	"bytes"
	"flag"
	"math"
	"testing"
	"time"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/imageproc"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

// realWidth is the package TestF16RealWidth runs: a q4 package at cogvlm-chat-hf's widths,
// as bench/f16-realwidth.sh makes it (demo-model --preset cogvlm-base-224-hf --layers 1
// --vision-layers 1, then convert --quant q4), with the CPU reference's answers beside it
// (URL.text.json, URL.image.json: cogvlm generate --json).
var realWidth = flag.String("realwidth", "",
	"URL (under the test runner's /repo/) of a real-width q4 package for TestF16RealWidth, e.g. /repo/.bin/realwidth/base-224-q4 (see bench/f16-realwidth.sh)")

// TestF16RealWidth is issue 16's accuracy check at CogVLM's real widths (hidden 4096, MLP
// 11008, vocabulary 32000, vision 1792 × 15360 at 224 pixels: 258 image tokens): the
// prefill logits of a text and an image prompt on the f16 path and on the f32 path
// (Kernels.NoF16) of the same device, from one upload of the package, agree to a cosine of
// 0.9999, the f32 path picks the CPU reference's token and the f16 path the f32 path's
// wherever the f32 top-2 margin exceeds twice the f16 error (checkF16Paths). It logs the
// cosine, the largest logit error, the margin and each path's time; bench/README.md has
// the figures. A CPU adapter takes minutes, so it runs from bench/f16-realwidth.sh, not
// in ./build.sh test.
func TestF16RealWidth(t *testing.T) {
	if *realWidth == "" {
		t.Skip("no -realwidth package: bench/f16-realwidth.sh makes one and runs this test (minutes on a CPU adapter, so not in ./build.sh test)")
	}
	dev := testKernels(t).Dev
	if !dev.Has(gpu.FeatureShaderF16) {
		t.Skipf("the adapter (%s %s) has no shader-f16: there is no f16 path to compare with the f32 path", dev.Info.Vendor, dev.Info.Architecture)
	}
	k, k32 := kernels.NewKernels(dev), kernels.NewKernels(dev)
	k32.NoF16 = true
	begin := time.Now()
	p, err := loadPackageAt(k, *realWidth+"/manifest.json", LoadOptions{})
	if err != nil {
		t.Fatalf("%v (bench/f16-realwidth.sh makes the package)", err)
	}
	defer p.Release()
	cfg := p.Config
	t.Logf("package %s: hidden %d, MLP %d, vocabulary %d, vision %d × %d at %d pixels, %d decoder and %d vision layers; uploaded in %.1f s",
		*realWidth, cfg.HiddenSize, cfg.IntermediateSize, cfg.VocabSize, cfg.Vision.HiddenSize, cfg.Vision.IntermediateSize,
		cfg.Vision.ImageSize, cfg.NumHiddenLayers, cfg.Vision.NumHiddenLayers, time.Since(begin).Seconds())

	for _, c := range []struct{ name, image string }{
		{"text", ""},
		{"image", "/repo/testdata/golden/tiny-chat/image.png"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ref := loadGolden(t, *realWidth+"."+c.name+".json")
			in := model.Inputs{InputIDs: ref.InputIDs, TokenTypeIDs: ref.TokenTypeIDs, PositionIDs: ref.PositionIDs}
			var pixels []float32
			if c.image != "" {
				if pixels, err = imageproc.Preprocess(bytes.NewReader(fetchBytes(t, c.image)), cfg.Vision.ImageSize, 0); err != nil {
					t.Fatal(err)
				}
			}
			var logits [2][][]float32 // [f32, f16][prefill]
			var took [2]time.Duration
			for path, kk := range []*kernels.Kernels{k32, k} {
				begin := time.Now()
				var image *kernels.Tensor
				if pixels != nil {
					v, err := NewVision(kk, p)
					if err != nil {
						t.Fatal(err)
					}
					if err := v.Encode(pixels); err != nil {
						t.Fatal(err)
					}
					image = &v.Out
				}
				d, err := NewDecoder(kk, p, len(in.InputIDs)+1, len(in.InputIDs), kernels.KVF32)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := d.Prefill(in, image); err != nil {
					t.Fatal(err)
				}
				l, err := d.Logits()
				if err != nil {
					t.Fatal(err)
				}
				logits[path], took[path] = [][]float32{l}, time.Since(begin)
			}
			cos, worst, margins := checkF16Paths(t, ref.GeneratedIDs, logits)
			var scale float64 // the largest f32 logit, for the error relative to it
			for _, v := range logits[0][0] {
				scale = max(scale, math.Abs(float64(v)))
			}
			t.Logf("real width, %s prompt of %d tokens: cosine %.7f, max abs logit error %.3g (max rel %.2e), f32 top-2 margin %.3g; f32 path %.1f s, f16 path %.1f s (%s %s)",
				c.name, len(in.InputIDs), cos, worst, worst/scale, margins[0], took[0].Seconds(), took[1].Seconds(), dev.Info.Vendor, dev.Info.Architecture)
		})
	}
}
