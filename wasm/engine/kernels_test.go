//go:build js && wasm

package engine

import (
	"flag"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels/kernelstest"
)

var sharedKernels *kernels.Kernels

// noF16 runs the tests and benchmarks on the f32 path where the adapter has shader-f16
// (bench/device.sh times both paths with it).
var noF16 = flag.Bool("nof16", false, "keep the f32 kernels on an adapter with shader-f16 (Kernels.NoF16)")

// testKernels is the test binary's one device and kernel cache.
func testKernels(t *testing.T) *kernels.Kernels {
	t.Helper()
	if sharedKernels == nil {
		d, err := gpu.RequestDevice(gpu.Options{})
		if err != nil {
			t.Fatalf("RequestDevice: %v", err)
		}
		sharedKernels = newKernels(t, d)
		sharedKernels.NoF16 = *noF16
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
