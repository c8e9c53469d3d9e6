//go:build js && wasm

// Package kernelstest gives the js/wasm tests of wasm/kernels and wasm/engine what the
// page's worker gives the engine: the replayer, web/cogvlm-replay.js's module (see
// kernels.SetReplayer); and what both share: the test binary's device and the -nof16
// flag. Tests only; the product imports it nowhere.
package kernelstest

import (
	"flag"
	"fmt"
	"sync"
	"testing"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// ReplayFile is the replayer's module, the one copy the page serves.
const ReplayFile = "web/cogvlm-replay.js"

// importModule fetches url and imports its text as an ES module. Both test runners serve
// the repository under /repo/ (internal/cmd/wasmexec's page, internal/gpunode/host.cjs for
// Node), so one fetch reaches it in either, and a data: URL imports it in either (Node
// cannot import from http:, a page from a file path).
const importModule = `return fetch(url).then((r) => {
	if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
	return r.text();
}).then((text) => import('data:text/javascript;charset=utf-8,' + encodeURIComponent(text)))`

// NoF16 is the -nof16 flag of both packages' tests: run the tests and benchmarks on the
// f32 path where the adapter has shader-f16 (Kernels.NoF16; bench/device.sh times both
// paths with it).
var NoF16 = flag.Bool("nof16", false, "keep the f32 kernels on an adapter with shader-f16 (Kernels.NoF16)")

var device *gpu.Device

// Device is the test binary's one device with default options, requested on first use
// (a request costs a second on SwiftShader).
func Device(t testing.TB) *gpu.Device {
	t.Helper()
	if device == nil {
		d, err := gpu.RequestDevice(gpu.Options{})
		if err != nil {
			t.Fatalf("RequestDevice: %v", err)
		}
		device = d
	}
	return device
}

var replayer struct {
	once sync.Once
	v    safejs.Value
	err  error
}

// Replayer returns web/cogvlm-replay.js's module, imported once per test binary.
func Replayer() (safejs.Value, error) {
	replayer.once.Do(func() {
		replayer.v, replayer.err = load("/repo/" + ReplayFile)
	})
	return replayer.v, replayer.err
}

// Supply hands k (a *kernels.Kernels: an interface, so that the kernels' own tests can
// use this package) the replayer, as the page's worker hands it to the engine.
func Supply(k interface{ SetReplayer(safejs.Value) error }) error {
	r, err := Replayer()
	if err != nil {
		return err
	}
	return k.SetReplayer(r)
}

func load(url string) (safejs.Value, error) {
	ctor, err := safejs.Global().Get("Function")
	if err != nil {
		return safejs.Undefined(), err
	}
	fn, err := ctor.New("url", importModule)
	if err != nil {
		return safejs.Undefined(), err
	}
	p, err := fn.Invoke(url)
	if err != nil {
		return safejs.Undefined(), fmt.Errorf("import %s: %v", url, err)
	}
	m, err := gpu.Await(p)
	if err != nil {
		return safejs.Undefined(), fmt.Errorf("import %s: %v", url, err)
	}
	return m, nil
}
