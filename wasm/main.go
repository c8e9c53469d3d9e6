//go:build js && wasm

// Command wasm is the cogvlm-web engine compiled to WebAssembly (web/cogvlm.wasm). It
// registers `globalThis.cogvlmEngine`, whose functions return promises, and then waits
// for calls forever.
package main

import (
	"errors"
	"runtime"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/wasm/bridge"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

func main() {
	engine, err := safejs.ValueOf(map[string]any{"goVersion": runtime.Version()})
	if err != nil {
		panic(err)
	}
	bridge.Export(engine, "probe", probe)
	safejs.Global().Set("cogvlmEngine", engine)
	if ready, err := safejs.Global().Get("cogvlmEngineReady"); err == nil && ready.Type() == safejs.TypeFunction {
		ready.Invoke(engine)
	}
	select {}
}

// probe requests a device and reports the adapter, its features and limits: what the page
// shows before any download, and what the loader plans against.
func probe([]safejs.Value) (any, error) {
	d, err := gpu.RequestDevice(gpu.Options{})
	if err != nil {
		if errors.Is(err, gpu.ErrNoWebGPU) {
			return nil, &bridge.CodedError{Code: "no-webgpu", Err: err}
		}
		return nil, err
	}
	defer d.Destroy()
	return map[string]any{
		"vendor":                      d.Info.Vendor,
		"architecture":                d.Info.Architecture,
		"fallback":                    d.Info.Fallback,
		"shaderF16":                   d.Has(gpu.FeatureShaderF16),
		"subgroups":                   d.Has(gpu.FeatureSubgroups),
		"timestampQuery":              d.Has(gpu.FeatureTimestampQuery),
		"maxBufferSize":               float64(d.Limits.MaxBufferSize),
		"maxStorageBufferBindingSize": float64(d.Limits.MaxStorageBufferBindingSize),
	}, nil
}
