//go:build js && wasm

package engine

import (
	"testing"

	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels/kernelstest"
)

var sharedKernels *kernels.Kernels

// testKernels is the test binary's one kernel cache, on kernelstest's device.
func testKernels(t *testing.T) *kernels.Kernels {
	t.Helper()
	if sharedKernels == nil {
		sharedKernels = newKernels(t, kernelstest.Device(t))
		sharedKernels.NoF16 = *kernelstest.NoF16
	}
	return sharedKernels
}

// newKernels makes kernels on d with the replayer the page's worker hands the engine, so
// that the tests run plans as the app does.
func newKernels(t *testing.T, d *gpu.Device) *kernels.Kernels {
	t.Helper()
	k := kernels.NewKernels(d)
	if err := kernelstest.Supply(k); err != nil {
		t.Fatal(err)
	}
	return k
}
