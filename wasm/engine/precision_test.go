//go:build js && wasm

package engine

import (
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// The adapters as they describe themselves (TestAdapter's log, 2026-12-07).
var (
	lavapipeInfo    = gpu.AdapterInfo{Vendor: "mesa", Architecture: "software", Device: "llvmpipe-llvm-15-0-6-256-bits-", Description: "llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1", Fallback: true}
	swiftShaderInfo = gpu.AdapterInfo{Vendor: "google", Architecture: "swiftshader", Fallback: true}
	// Chromium has reported SwiftShader without isFallbackAdapter: its architecture says it.
	swiftShaderNoFallback = gpu.AdapterInfo{Vendor: "google", Architecture: "swiftshader"}
	gpuInfo               = gpu.AdapterInfo{Vendor: "nvidia", Architecture: "hopper"}
)

func TestPrecisionUseF16(t *testing.T) {
	for _, c := range []struct {
		name      string
		precision string
		info      gpu.AdapterInfo
		shaderF16 bool
		want      bool
		err       string
	}{
		{"GPU auto", "", gpuInfo, true, true, ""},
		{"GPU auto spelled out", "auto", gpuInfo, true, true, ""},
		{"GPU without shader-f16", "auto", gpuInfo, false, false, ""},
		{"GPU f32", "f32", gpuInfo, true, false, ""},
		{"GPU f16", "f16", gpuInfo, true, true, ""},
		{"lavapipe auto", "", lavapipeInfo, true, false, ""},
		{"lavapipe f16", "f16", lavapipeInfo, true, true, ""},
		{"lavapipe f32", "f32", lavapipeInfo, true, false, ""},
		{"SwiftShader auto", "auto", swiftShaderInfo, false, false, ""},
		{"SwiftShader without the fallback flag", "auto", swiftShaderNoFallback, true, false, ""},
		{"SwiftShader f16", "f16", swiftShaderInfo, false, false, `precision "f16": the adapter (google swiftshader, a CPU adapter) has no shader-f16`},
		{"GPU f16 without shader-f16", "f16", gpuInfo, false, false, `precision "f16": the adapter (nvidia hopper) has no shader-f16`},
		{"unknown", "bf16", gpuInfo, true, false, `precision "bf16": want "auto", "f16" or "f32"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParsePrecision(c.precision)
			if err == nil {
				var use bool
				use, err = p.UseF16(c.info, c.shaderF16)
				if err == nil && use != c.want {
					t.Errorf("precision %q on %+v (shader-f16 %v): f16 %v, want %v", c.precision, c.info, c.shaderF16, use, c.want)
				}
			}
			switch {
			case c.err == "" && err != nil:
				t.Errorf("precision %q: %v", c.precision, err)
			case c.err != "" && (err == nil || !strings.HasPrefix(err.Error(), c.err)):
				t.Errorf("precision %q: error %v, want one starting %q", c.precision, err, c.err)
			}
		})
	}
}

// TestPrecisionThisAdapter logs what "auto" chooses on the adapter the tests run on.
func TestPrecisionThisAdapter(t *testing.T) {
	d := testKernels(t).Dev
	use, err := PrecisionAuto.UseF16(d.Info, d.Has(gpu.FeatureShaderF16))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("adapter %q %q (fallback %v, CPU %v, shader-f16 %v): precision \"auto\" takes the %s path",
		d.Info.Vendor, d.Info.Architecture, d.Info.Fallback, d.Info.CPU(), d.Has(gpu.FeatureShaderF16), map[bool]string{true: "f16", false: "f32"}[use])
	if d.Info.CPU() && use {
		t.Error("a CPU adapter takes the f16 path by default")
	}
}
