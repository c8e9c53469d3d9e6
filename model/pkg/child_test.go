package pkg

import (
	"fmt"
	"os"
)

// Environment of the converter child process that TestConvertPeakRSS starts (the test
// binary re-executed): with childEnv set, TestMain converts childIn to childOut and exits
// instead of running tests.
const (
	childEnv = "COGVLM_PKG_TEST_CONVERT_CHILD"
	childIn  = "COGVLM_PKG_TEST_CONVERT_IN"
	childOut = "COGVLM_PKG_TEST_CONVERT_OUT"
)

// childConvert runs the conversion when this process is the child, and reports whether
// it was.
func childConvert() bool {
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
