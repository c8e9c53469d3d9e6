// Command randmodel writes a small CogVLM checkpoint of a randomly drawn valid config: the
// property test of the GPU engine ("the GPU runs every config the CPU reference accepts")
// converts it to packages and compares the GPU's tokens with the CPU reference's.
//
//	go run ./internal/cmd/randmodel --seed 7 --tokenizer testdata/golden/tiny-chat/model --out DIR
//
// The config comes from the seed alone (Draw): hidden sizes that are not multiples of 64,
// odd head counts, a vision width other than the language model's, 1–3 layers, image sizes
// from 3 to 70 pixels, head dims ≡ 2 (mod 4), q4 group sizes under 32. Weights are the demo
// model's recipe (demo.Weights), the tokenizer files are copied from --tokenizer. The one
// line on stdout names the package encoding to test the config in: q4 where every matrix a
// q4 package quantizes has an input size that is a multiple of 8 (a q4 word), else f32. (An
// f32 package of a q4 config would exercise the same f32 kernels as the f32 configs, at
// several times their cost on SwiftShader, whose f32 lm_head of 32000 rows dominates a
// decode step.) stderr gets the drawn sizes.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/demo"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

// tokenizerFiles are copied from the --tokenizer folder; the vocabulary is the real
// 32000-piece one, so the drawn configs keep vocab_size 32000.
var tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"}

func main() {
	seed := flag.Uint64("seed", 1, "`N` the config and the weights are drawn from")
	tok := flag.String("tokenizer", "", "checkpoint `DIR` whose tokenizer files to copy (required)")
	out := flag.String("out", "", "folder `DIR` to write (required; replaced)")
	flag.Parse()
	if *tok == "" || *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: randmodel --seed N --tokenizer DIR --out DIR")
		os.Exit(2)
	}
	cfg, q4 := Draw(*seed)
	if err := write(*out, *tok, cfg, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "randmodel:", err)
		os.Exit(1)
	}
	v := cfg.Vision
	fmt.Fprintf(os.Stderr, "randmodel seed %d: hidden %d (%d heads × %d), intermediate %d, %d layers; vision hidden %d (%d heads × %d), intermediate %d, %d layers, image %d (patch %d)\n",
		*seed, cfg.HiddenSize, cfg.NumAttentionHeads, cfg.HeadDim(), cfg.IntermediateSize, cfg.NumHiddenLayers,
		v.HiddenSize, v.NumHeads, v.HeadDim(), v.IntermediateSize, v.NumHiddenLayers, v.ImageSize, v.PatchSize)
	if q4 {
		fmt.Println("q4")
	} else {
		fmt.Println("f32")
	}
}

// Draw draws a valid config from seed, and whether it is q4-convertible. Half the seeds
// draw sizes that are multiples of 8 (so that the q4 package exists, with group sizes of 8,
// 16 or 24 where a size is no multiple of 32), half any size the CPU reference accepts
// (head_dim even for RoPE; the vision head_dim may be odd).
func Draw(seed uint64) (model.Config, bool) {
	r := rand.New(rand.NewPCG(seed, 0x636f67766c6d))
	q4 := r.IntN(2) == 0
	step := 1
	if q4 {
		step = 8
	}
	// size is a multiple of step in [lo, hi] that is not a multiple of 64, so that rows
	// of it are not multiples of the 256-byte storage offset alignment.
	size := func(lo, hi int) int {
		for {
			n := lo + step*r.IntN((hi-lo)/step+1)
			if n%64 != 0 {
				return n
			}
		}
	}
	cfg := demo.Config
	cfg.Architectures = []string{model.Architecture}
	// language model: heads × head_dim, head_dim even
	for {
		heads := 1 + r.IntN(8)
		hd := 2 * (1 + r.IntN(16))
		h := heads * hd
		if h%step == 0 && h%64 != 0 && h >= 8 && h <= 144 {
			cfg.HiddenSize, cfg.NumAttentionHeads = h, heads
			break
		}
	}
	cfg.IntermediateSize = size(8, 240)
	cfg.NumHiddenLayers = 1 + r.IntN(3)
	cfg.MaxPositionEmbeddings = 1024
	cfg.TemplateVersion = "chat"
	// vision tower: a width other than the language model's, heads dividing it
	v := &cfg.Vision
	for {
		v.HiddenSize = size(8, 96)
		if v.HiddenSize != cfg.HiddenSize {
			break
		}
	}
	var divisors []int
	for d := 1; d <= 8; d++ {
		if v.HiddenSize%d == 0 {
			divisors = append(divisors, d)
		}
	}
	v.NumHeads = divisors[r.IntN(len(divisors))]
	v.IntermediateSize = size(8, 240)
	v.NumHiddenLayers = 1 + r.IntN(2)
	v.PatchSize = []int{3, 5, 7, 14}[r.IntN(4)]
	grid := 1 + r.IntN(5)
	v.ImageSize = grid * v.PatchSize
	v.NumPositions = grid*grid + 1
	return cfg, q4
}

// write creates dir (replacing it) with config.json, model.safetensors and the tokenizer.
func write(dir, tokDir string, cfg model.Config, seed uint64) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("drew an invalid config: %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	for _, name := range tokenizerFiles {
		b, err := os.ReadFile(filepath.Join(tokDir, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	tensors, err := demo.Weights(cfg, seed)
	if err != nil {
		return err
	}
	return safetensors.WriteFile(filepath.Join(dir, safetensors.SingleFileName), tensors, map[string]string{"format": "pt"})
}
