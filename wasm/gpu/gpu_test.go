//go:build js && wasm

package gpu

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/shaders"
)

// device is shared by the tests that do not need special options; requesting one per
// test costs a second each on SwiftShader.
var shared *Device

func testDevice(t *testing.T) *Device {
	t.Helper()
	if shared == nil {
		d, err := RequestDevice(Options{})
		if err != nil {
			t.Fatalf("RequestDevice: %v", err)
		}
		shared = d
	}
	return shared
}

func TestDeviceFeaturesAndLimits(t *testing.T) {
	d := testDevice(t)
	t.Logf("adapter: %+v", d.Info)
	t.Logf("features: shader-f16=%v subgroups=%v timestamp-query=%v",
		d.Has(FeatureShaderF16), d.Has(FeatureSubgroups), d.Has(FeatureTimestampQuery))
	t.Logf("limits: %+v", d.Limits)
	// We ask for the adapter's maxima: every adapter allows at least the spec defaults, and
	// SwiftShader allows 1 GiB bindings (DESIGN.md), far above the 128 MiB default.
	if d.Limits.MaxStorageBufferBindingSize < 128<<20 || d.Limits.MaxBufferSize < 256<<20 {
		t.Errorf("limits below the WebGPU defaults: %+v", d.Limits)
	}
	def, err := RequestDevice(Options{DefaultLimits: true})
	if err != nil {
		t.Fatal(err)
	}
	defer def.Destroy()
	if def.Limits.MaxStorageBufferBindingSize != 128<<20 {
		t.Errorf("default-limits device: maxStorageBufferBindingSize = %d, want 134217728", def.Limits.MaxStorageBufferBindingSize)
	}
	if d.Limits.MaxStorageBufferBindingSize < def.Limits.MaxStorageBufferBindingSize {
		t.Errorf("requested limits are below the defaults")
	}
}

func TestAddKernel(t *testing.T) {
	d := testDevice(t)
	src, err := shaders.Source("add.wgsl")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := d.CreateShaderModule("add.wgsl", src)
	if err != nil {
		t.Fatal(err)
	}
	const wg = 64
	pl, err := d.CreateComputePipeline(PipelineDesc{Label: "add", Module: mod, Constants: map[string]float64{"WORKGROUP_SIZE": wg}})
	if err != nil {
		t.Fatal(err)
	}
	// An odd size and fewer workgroups than elements/WORKGROUP_SIZE exercise the grid-stride loop.
	const n = 100_003
	r := rand.New(rand.NewPCG(1, 2))
	a, b := make([]float32, n), make([]float32, n)
	for i := range a {
		a[i], b[i] = r.Float32()*2-1, r.Float32()*2-1
	}
	bufA, _ := d.CreateBuffer("a", 4*n, UsageStorage|UsageCopyDst)
	bufB, _ := d.CreateBuffer("b", 4*n, UsageStorage|UsageCopyDst)
	out, err := d.CreateBuffer("out", 4*n, UsageStorage|UsageCopySrc)
	if err != nil {
		t.Fatal(err)
	}
	params, err := d.CreateBuffer("params", 16, UsageUniform|UsageCopyDst)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		buf  *Buffer
		data []byte
	}{{bufA, Float32Bytes(a)}, {bufB, Float32Bytes(b)}, {params, Uint32Bytes([]uint32{n, 0, 0, 0})}} {
		if err := d.WriteBuffer(w.buf, 0, w.data); err != nil {
			t.Fatal(err)
		}
	}
	bg, err := d.CreateBindGroup("add", pl, 0,
		Binding{Binding: 0, Buffer: params}, Binding{Binding: 1, Buffer: bufA},
		Binding{Binding: 2, Buffer: bufB}, Binding{Binding: 3, Buffer: out})
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := d.CreateCommandEncoder("add")
	pass, _ := enc.BeginComputePass("add", nil)
	pass.SetPipeline(pl)
	pass.SetBindGroup(0, bg)
	if err := pass.Dispatch(97, 1, 1); err != nil {
		t.Fatal(err)
	}
	pass.End()
	cb, err := enc.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Submit(cb); err != nil {
		t.Fatal(err)
	}
	raw, err := d.ReadBuffer(out, 0, 4*n)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	got := BytesFloat32(raw)
	for i := range got {
		if want := a[i] + b[i]; got[i] != want {
			t.Fatalf("out[%d] = %v, want %v", i, got[i], want)
		}
	}
}

func TestShaderErrorNamesLine(t *testing.T) {
	d := testDevice(t)
	code := "@compute @workgroup_size(1)\nfn main() {\n    let x: f32 = undefined_thing;\n}\n"
	_, err := d.CreateShaderModule("broken.wgsl", code)
	var serr *ShaderError
	if !errors.As(err, &serr) {
		t.Fatalf("error = %v, want a *ShaderError", err)
	}
	if serr.Errors[0].Line != 3 || !strings.Contains(err.Error(), "broken.wgsl:3:") {
		t.Errorf("error = %v, want it to name broken.wgsl line 3", err)
	}
	if !strings.Contains(err.Error(), "undefined_thing") {
		t.Errorf("error = %v, want it to quote the offending source", err)
	}
}

func TestPipelineErrors(t *testing.T) {
	d := testDevice(t)
	src, _ := shaders.Source("add.wgsl")
	mod, err := d.CreateShaderModule("add.wgsl", src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateComputePipeline(PipelineDesc{Label: "bad-constant", Module: mod, Constants: map[string]float64{"NO_SUCH_CONSTANT": 1}}); err == nil {
		t.Error("pipeline with an unknown override constant: no error")
	} else if !strings.Contains(err.Error(), "bad-constant") {
		t.Errorf("error %v does not name the pipeline", err)
	}
	if _, err := d.CreateComputePipeline(PipelineDesc{Label: "bad-entry", Module: mod, EntryPoint: "nope"}); err == nil {
		t.Error("pipeline with a missing entry point: no error")
	}
}

func TestLimitErrors(t *testing.T) {
	// The spec defaults (maxStorageBufferBindingSize 128 MiB, maxBufferSize 256 MiB) let us
	// exceed a binding limit without allocating gigabytes.
	d, err := RequestDevice(Options{DefaultLimits: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Destroy()
	if _, err := d.CreateBuffer("huge", d.Limits.MaxBufferSize+4, UsageStorage); !errors.Is(err, ErrLimit) {
		t.Errorf("buffer over maxBufferSize: error = %v, want ErrLimit", err)
	}
	src, _ := shaders.Source("add.wgsl")
	mod, err := d.CreateShaderModule("add.wgsl", src)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := d.CreateComputePipeline(PipelineDesc{Label: "add", Module: mod})
	if err != nil {
		t.Fatal(err)
	}
	big, err := d.CreateBuffer("big", d.Limits.MaxStorageBufferBindingSize+256, UsageStorage)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Destroy()
	small, _ := d.CreateBuffer("small", 1024, UsageStorage)
	params, _ := d.CreateBuffer("params", 16, UsageUniform)
	_, err = d.CreateBindGroup("too-big", pl, 0,
		Binding{Binding: 0, Buffer: params}, Binding{Binding: 1, Buffer: big},
		Binding{Binding: 2, Buffer: small}, Binding{Binding: 3, Buffer: small})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "maxStorageBufferBindingSize") {
		t.Errorf("binding over maxStorageBufferBindingSize: error = %v", err)
	}
	// A mistake only WebGPU's validation sees (a uniform-only buffer in a storage slot)
	// comes back from the error scope as an error, not as an uncaptured event.
	_, err = d.CreateBindGroup("wrong-usage", pl, 0,
		Binding{Binding: 0, Buffer: params}, Binding{Binding: 1, Buffer: params},
		Binding{Binding: 2, Buffer: small}, Binding{Binding: 3, Buffer: small})
	if err == nil || !strings.Contains(err.Error(), "wrong-usage") {
		t.Errorf("binding a uniform buffer as storage: error = %v, want a validation error naming the group", err)
	}
	if _, err := d.CreateBindGroup("outside", pl, 0, Binding{Binding: 1, Buffer: small, Offset: 512, Size: 1024}); err == nil {
		t.Error("binding beyond the buffer's end: no error")
	}
	if err := d.Sync(); err != nil {
		t.Errorf("errors leaked past the scopes: %v", err)
	}
}

func TestAwait(t *testing.T) {
	promise, _ := safejs.Global().Get("Promise")
	ok, _ := promise.Call("resolve", 42)
	v, err := Await(ok)
	if n, _ := v.Int(); err != nil || n != 42 {
		t.Errorf("Await(resolve(42)) = %v, %v", n, err)
	}
	errCtor, _ := safejs.Global().Get("TypeError")
	reason, _ := errCtor.New("boom")
	bad, _ := promise.Call("reject", reason)
	if _, err := Await(bad); err == nil || err.Error() != "TypeError: boom" {
		t.Errorf("Await(reject(TypeError boom)) error = %v", err)
	}
	plain, _ := safejs.ValueOf(7)
	if v, err := Await(plain); err != nil || !v.Equal(plain) {
		t.Errorf("Await(7) = %v, %v", v, err)
	}
}

func TestDeviceLost(t *testing.T) {
	d, err := RequestDevice(Options{DefaultLimits: true})
	if err != nil {
		t.Fatal(err)
	}
	d.Destroy()
	<-d.Lost()
	if err := d.Err(); !errors.Is(err, ErrDeviceLost) || !strings.Contains(err.Error(), "destroyed") {
		t.Errorf("Err() after Destroy = %v, want ErrDeviceLost (destroyed)", err)
	}
	if _, err := d.CreateBuffer("after-loss", 16, UsageStorage); !errors.Is(err, ErrDeviceLost) {
		t.Errorf("CreateBuffer on a lost device: error = %v, want ErrDeviceLost", err)
	}
}
