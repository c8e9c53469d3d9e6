//go:build js && wasm

package engine

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/pkg"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

var (
	modelBench = flag.Bool("modelbench", false,
		"time one real-size vision layer, the adapter and one decoder layer (prefill and decode) and project CogVLM-17B's times (see bench/README.md)")
	modelBenchReal = flag.Bool("modelbench-real", false,
		"with -modelbench on a CPU adapter: the real image and cache sizes anyway, each block timed once without a warm-up (tens of minutes)")
)

// syntheticPackage uploads random weights in the q4 package's layout (pkg.PlanManifest,
// the default policy) for cfg, without converting anything: each shard is one buffer,
// filled by tiling a 1 MiB chunk valid for the tensor's encoding (random nibbles or
// bytes, f16 scales of 0.01, small floats), so a real-size layer never passes through
// the Go heap.
func syntheticPackage(t *testing.T, k *kernels.Kernels, cfg model.Config) *Package {
	t.Helper()
	m, err := pkg.PlanManifest(cfg, pkg.ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := &Package{Manifest: m, Config: cfg, weights: map[string]kernels.Weight{}}
	r := rand.New(rand.NewPCG(9, 9))
	const chunk = 1 << 20
	random := make([]byte, chunk)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	floats := make([]byte, chunk)
	for i := 0; i < chunk; i += 4 {
		binary.LittleEndian.PutUint32(floats[i:], math.Float32bits(float32(r.NormFloat64()*0.02)))
	}
	halves := make([]byte, chunk)
	for i := 0; i < chunk; i += 2 {
		binary.LittleEndian.PutUint16(halves[i:], quant.F16FromFloat32(0.01))
	}
	fill := func(buf *gpu.Buffer, off, n int64, pattern []byte) {
		for done := int64(0); done < n; done += chunk {
			size := min(chunk, n-done)
			if err := k.Dev.WriteBuffer(buf, uint64(off+done), pattern[:size]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range m.Shards {
		b, err := k.Dev.CreateBuffer("synthetic "+s.File, uint64(s.Size), gpu.UsageStorage|gpu.UsageCopyDst)
		if err != nil {
			t.Fatal(err)
		}
		p.shards = append(p.shards, b)
	}
	for _, te := range m.Tensors {
		buf := p.shards[te.Shard]
		switch te.Encoding {
		case quant.Q4, quant.Q8:
			fill(buf, te.Offset, te.Length, random)
			fill(buf, te.ScalesOffset, te.ScalesLength, halves)
		case quant.F16:
			fill(buf, te.Offset, te.Length, halves)
		default:
			fill(buf, te.Offset, te.Length, floats)
		}
		w := kernels.Weight{TensorEntry: te, Data: kernels.Tensor{Buf: buf, Offset: uint64(te.Offset), Size: uint64(te.Length)}}
		if te.Encoding.Quantized() {
			w.Scales = kernels.Tensor{Buf: buf, Offset: uint64(te.ScalesOffset), Size: uint64(te.ScalesLength)}
		}
		p.weights[te.Name] = w
	}
	if err := p.expandF16(k); err != nil {
		t.Fatal(err)
	}
	return p
}

// median times a plan runs times (after one warm-up run, unless runs is 0: then one cold
// run) and returns the median.
func median(t *testing.T, timer *kernels.Timer, p *kernels.Plan, runs int) time.Duration {
	t.Helper()
	var samples []time.Duration
	first := 0
	if runs == 0 {
		first, runs = 1, 1
	}
	for i := first; i <= runs; i++ {
		d, err := timer.Time(p)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			samples = append(samples, d)
		}
	}
	return kernels.Median(samples)
}

// TestModelBench times CogVLM-17B's blocks at their real sizes, one layer each, on this
// adapter, and projects the whole model: vision (63 layers) + adapter + prefill of the
// 1227 image tokens and a 16-token question (32 layers, both experts), and decode
// tokens/s at a 2048-position cache. On a CPU adapter (SwiftShader, about a GFLOP/s) a
// 112-pixel image (66 image tokens) stands in for the 490-pixel one, the cache has 256
// positions, and each block is timed once after a warm-up (an hour otherwise); the table
// says which sizes ran, and the projection is only meaningful on a GPU.
func TestModelBench(t *testing.T) {
	if !*modelBench {
		t.Skip("the model benchmark runs with -modelbench (see bench/README.md)")
	}
	k := testKernels(t)
	timer, err := kernels.NewTimer(k)
	if err != nil {
		t.Fatal(err)
	}
	defer timer.Destroy()
	cpu := k.Dev.Info.CPU()

	cfg := cogvlm17B
	cfg.NumHiddenLayers, cfg.Vision.NumHiddenLayers = 1, 1
	imageTokens, question := cfg.NumImageTokens(), 16
	runs := 3
	if cpu && *modelBenchReal {
		cpu, runs = false, 0
	}
	if cpu {
		// a 112-pixel image: 8×8 patches, 66 image tokens
		cfg.Vision.ImageSize, cfg.Vision.NumPositions = 112, 8*8+1
		imageTokens = cfg.NumImageTokens()
		runs = 1
	}
	p := syntheticPackage(t, k, cfg)
	defer p.Release()
	progress := func(what string, d time.Duration) { fmt.Fprintf(os.Stderr, "modelbench: %s: %.1f ms\n", what, ms(d)) }

	// vision: one tower layer; the adapter is timed from the whole plan minus the layer
	v, err := NewVision(k, p)
	if err != nil {
		t.Fatal(err)
	}
	visionAll := median(t, timer, v.plan, runs)
	progress("vision tower (one layer) + adapter", visionAll)
	layerSteps := 11 // per vision layer in Vision.record
	head := &kernels.Plan{Steps: v.plan.Steps[2 : 2+layerSteps]}
	visionLayer := median(t, timer, head, runs)
	progress("vision layer", visionLayer)
	adapter := visionAll - visionLayer

	// decoder: one layer with both experts over the image and the question, then decode
	seq := cfg.MaxPositionEmbeddings
	if cpu {
		seq = 256
	}
	d, err := NewDecoder(k, p, seq, imageTokens+question+1, kernels.KVF16)
	if err != nil {
		t.Fatal(err)
	}
	n := 1 + imageTokens + question
	runs0 := []model.ExpertRun{{Start: 0, End: 1}, {Start: 1, End: imageTokens, Vision: true}, {Start: imageTokens, End: n}}
	prefillPlan, err := d.plan(n, d.prefillIDs, d.prefillPos, runs0, imageRows{src: v.Out, start: 1, count: imageTokens}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.state.Set(k.Dev, n, 0); err != nil {
		t.Fatal(err)
	}
	prefill := median(t, timer, prefillPlan, runs)
	progress("prefill (one layer + head)", prefill)
	// decode over a full cache: the step uniform says seq − 1 cached rows
	if err := d.state.Set(k.Dev, seq, seq-1); err != nil {
		t.Fatal(err)
	}
	decode := median(t, timer, d.decode, runs)
	progress("decode step (one layer + head)", decode)

	// the per-layer part of prefill and decode: the plans minus their embedding and head
	headSteps := func(plan *kernels.Plan, from int) *kernels.Plan { return &kernels.Plan{Steps: plan.Steps[from:]} }
	prefillHead := median(t, timer, headSteps(prefillPlan, len(prefillPlan.Steps)-3), runs)
	decodeHead := median(t, timer, headSteps(d.decode, len(d.decode.Steps)-3), runs)
	prefillLayer, decodeLayer := prefill-prefillHead, decode-decodeHead

	L, VL := cogvlm17B.NumHiddenLayers, cogvlm17B.Vision.NumHiddenLayers
	visionTotal := time.Duration(VL)*visionLayer + adapter
	prefillTotal := time.Duration(L)*prefillLayer + prefillHead
	decodeStep := time.Duration(L)*decodeLayer + decodeHead
	info := k.Dev.Info
	how := fmt.Sprintf("median of %d after a warm-up", runs)
	if runs == 0 {
		how = "one cold run"
	}
	fmt.Printf("\nmodel benchmark, %s; adapter %q %q; timing: %s, %s\n",
		time.Now().UTC().Format("2006-01-02"), info.Vendor, info.Architecture, timer.Method, how)
	fmt.Printf("%-44s %12s\n", "block (one layer, CogVLM-17B sizes, q4)", "median ms")
	fmt.Printf("%-44s %12.1f\n", fmt.Sprintf("vision layer, %d tokens × 1792", cfg.Vision.NumPositions), ms(visionLayer))
	fmt.Printf("%-44s %12.1f\n", fmt.Sprintf("adapter, %d patches → 4096", cfg.Vision.NumPositions-1), ms(adapter))
	fmt.Printf("%-44s %12.1f\n", fmt.Sprintf("decoder layer prefill, %d tokens (both experts)", n), ms(prefillLayer))
	fmt.Printf("%-44s %12.1f\n", "final norm + lm_head (q8) + argmax", ms(prefillHead))
	fmt.Printf("%-44s %12.2f\n", fmt.Sprintf("decoder layer decode, cache of %d", seq), ms(decodeLayer))
	fmt.Printf("projected CogVLM-17B (%d vision layers, %d decoder layers): vision + adapter %.2f s, prefill of %d tokens %.2f s, decode %.2f tokens/s\n",
		VL, L, visionTotal.Seconds(), n, prefillTotal.Seconds(), 1/decodeStep.Seconds())
	if cpu {
		fmt.Println("(CPU adapter: a 112-pixel image (66 image tokens) instead of 490 (1227), a 256-position cache instead of 2048: these projections are not CogVLM-17B's; run on a GPU.)")
	}
}

func ms(d time.Duration) float64 { return d.Seconds() * 1e3 }
