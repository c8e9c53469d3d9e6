//go:build js && wasm

package engine

import (
	"fmt"

	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// Precision is the load option `precision`: which kernels the q4 matrix products take.
type Precision string

const (
	// PrecisionAuto (the default): the f16 kernels on a GPU with `shader-f16`, the f32
	// kernels elsewhere, CPU adapters included (see UseF16).
	PrecisionAuto Precision = "auto"
	// PrecisionF16 takes the f16 kernels wherever the device has `shader-f16`, a CPU
	// adapter too; it is an error on one without.
	PrecisionF16 Precision = "f16"
	// PrecisionF32 keeps the f32 kernels.
	PrecisionF32 Precision = "f32"
)

// ParsePrecision reads the load option; "" means PrecisionAuto.
func ParsePrecision(s string) (Precision, error) {
	switch p := Precision(s); p {
	case "":
		return PrecisionAuto, nil
	case PrecisionAuto, PrecisionF16, PrecisionF32:
		return p, nil
	}
	return "", fmt.Errorf("precision %q: want \"auto\", \"f16\" or \"f32\"", s)
}

// UseF16 decides whether the q4 products take the f16 kernels on an adapter described by
// info whose device was granted `shader-f16` or not (Kernels.NoF16 is its negation). This
// is the one place that decides it.
//
// On a CPU adapter "auto" keeps f32: lavapipe and SwiftShader run f16 arithmetic through
// f32 with conversions, and the f16 kernels measured 1.2–4× slower than the f32 ones on
// lavapipe (bench/README.md, "The f16 path"); on a GPU, packed f16 halves the activation
// traffic and doubles the multiply-add rate. Both CPU adapters say so (gpu.AdapterInfo.CPU:
// lavapipe under Dawn reports isFallbackAdapter, vendor "mesa", architecture "software";
// SwiftShader under Chromium isFallbackAdapter, architecture "swiftshader").
func (p Precision) UseF16(info gpu.AdapterInfo, shaderF16 bool) (bool, error) {
	switch p {
	case PrecisionF32:
		return false, nil
	case PrecisionF16:
		if !shaderF16 {
			return false, fmt.Errorf("precision \"f16\": the adapter (%s) has no shader-f16; use \"auto\" or \"f32\"", adapterName(info))
		}
		return true, nil
	case PrecisionAuto, "":
		return shaderF16 && !info.CPU(), nil
	}
	_, err := ParsePrecision(string(p))
	return false, err
}

// adapterName names an adapter in an error message.
func adapterName(info gpu.AdapterInfo) string {
	s := info.Vendor + " " + info.Architecture
	if info.Vendor == "" && info.Architecture == "" {
		s = "unnamed"
	}
	if info.CPU() {
		s += ", a CPU adapter"
	}
	return s
}
