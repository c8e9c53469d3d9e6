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
)

// runGenerateChild is the generating child's work.
func runGenerateChild(dir string, tokens int) error {
	start := time.Now()
	m, err := OpenModel(dir)
	if err != nil {
		return err
	}
	load := time.Since(start)
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
