package pkg

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/cogvlm-web/cogvlm-web/model"
)

// Environment of the converter child process that TestConvertPeakRSS starts (the test
// binary re-executed): with childEnv set, TestMain converts childIn to childOut and exits
// instead of running tests.
const (
	childEnv = "COGVLM_PKG_TEST_CONVERT_CHILD"
	childIn  = "COGVLM_PKG_TEST_CONVERT_IN"
	childOut = "COGVLM_PKG_TEST_CONVERT_OUT"
)

// Environment of the generating child that TestGeneratePeakRSS starts: the CPU reference
// loads the package childGenerate names and generates childTokens tokens greedily from a
// short text prompt, then prints its timings.
const (
	childGenerate = "COGVLM_PKG_TEST_GENERATE_CHILD"
	childTokens   = "COGVLM_PKG_TEST_GENERATE_TOKENS"
	childImage    = "COGVLM_PKG_TEST_GENERATE_IMAGE" // set: encode a blank image first
)

// runGenerateChild is the generating child's work.
func runGenerateChild(dir string, tokens int) error {
	start := time.Now()
	m, err := OpenModel(dir)
	if err != nil {
		return err
	}
	load := time.Since(start)
	if os.Getenv(childImage) != "" {
		// the vision tower at full width: time its first layer by the Linear inputs it
		// observes (layer 0's query_key_value, then the adapter's linear_proj)
		var layerStart, adapterStart time.Time
		m.ObserveLinear = func(weight string, _ []float32, _, _ int) {
			switch weight {
			case "model.vision.transformer.layers.0.attention.query_key_value.weight":
				layerStart = time.Now()
			case "model.vision.linear_proj.linear_proj.weight":
				adapterStart = time.Now()
			}
		}
		start := time.Now()
		if _, err := m.EncodeImage(make([]float32, m.Config.PixelCount())); err != nil {
			return err
		}
		m.ObserveLinear = nil
		fmt.Printf("image of %d tokens: patch embedding %v, vision layer 0 %v (of %d), adapter %v\n", m.Config.NumImageTokens(),
			layerStart.Sub(start).Round(time.Millisecond), adapterStart.Sub(layerStart).Round(time.Millisecond),
			m.Config.Vision.NumHiddenLayers, time.Since(adapterStart).Round(time.Millisecond))
	}
	ids := []int{450, 4996, 17354, 1701, 29916} // "The quick brown fox", without bos
	res, err := m.Generate(model.BuildInputs(ids, false, m.Config), nil, model.Sampling{MaxNewTokens: tokens}, nil)
	if err != nil {
		return err
	}
	fmt.Printf("load %v, prefill of %d tokens %v, %d decode steps %v (%.2f tokens/s)\n", load.Round(time.Millisecond),
		res.Stats.PrefillTokens, res.Stats.Prefill.Round(time.Millisecond), res.Stats.DecodeTokens,
		res.Stats.Decode.Round(time.Millisecond), float64(res.Stats.DecodeTokens)/res.Stats.Decode.Seconds())
	return nil
}

// childConvert runs the conversion (or the generation) when this process is the child,
// and reports whether it was.
func childConvert() bool {
	if dir := os.Getenv(childGenerate); dir != "" {
		tokens, _ := strconv.Atoi(os.Getenv(childTokens))
		if err := runGenerateChild(dir, tokens); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(childEnv) == "" {
		return false
	}
	if err := Convert(os.Getenv(childIn), os.Getenv(childOut), ConvertOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}
