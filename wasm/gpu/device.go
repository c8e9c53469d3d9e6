//go:build js && wasm

package gpu

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hack-pad/safejs"
)

// Feature names an optional WebGPU feature the engine can use.
type Feature string

const (
	FeatureShaderF16      Feature = "shader-f16"
	FeatureSubgroups      Feature = "subgroups"
	FeatureTimestampQuery Feature = "timestamp-query"
)

// optionalFeatures are requested whenever the adapter has them.
var optionalFeatures = []Feature{FeatureShaderF16, FeatureSubgroups, FeatureTimestampQuery}

var (
	// ErrNoWebGPU: the browser exposes no navigator.gpu or returns no adapter.
	ErrNoWebGPU = errors.New("WebGPU is not available")
	// ErrDeviceLost wraps every error caused by a lost device.
	ErrDeviceLost = errors.New("GPU device lost")
	// ErrOutOfMemory wraps allocation failures reported by the device.
	ErrOutOfMemory = errors.New("GPU out of memory")
	// ErrLimit wraps requests beyond a device limit (checked before calling WebGPU).
	ErrLimit = errors.New("exceeds a device limit")
)

// Limits are the device limits the engine plans against (bytes or counts).
type Limits struct {
	MaxBufferSize                     uint64
	MaxStorageBufferBindingSize       uint64
	MaxUniformBufferBindingSize       uint64
	MaxComputeWorkgroupStorageSize    uint64
	MaxComputeInvocationsPerWorkgroup uint64
	MaxComputeWorkgroupSizeX          uint64
	MaxComputeWorkgroupSizeY          uint64
	MaxComputeWorkgroupSizeZ          uint64
	MaxComputeWorkgroupsPerDimension  uint64
	MaxStorageBuffersPerShaderStage   uint64
	MaxBindGroups                     uint64
	MinStorageBufferOffsetAlignment   uint64
	MinUniformBufferOffsetAlignment   uint64
}

// limitFields maps WebGPU limit names to fields, so reading and requesting share one list.
func (l *Limits) fields() map[string]*uint64 {
	return map[string]*uint64{
		"maxBufferSize":                     &l.MaxBufferSize,
		"maxStorageBufferBindingSize":       &l.MaxStorageBufferBindingSize,
		"maxUniformBufferBindingSize":       &l.MaxUniformBufferBindingSize,
		"maxComputeWorkgroupStorageSize":    &l.MaxComputeWorkgroupStorageSize,
		"maxComputeInvocationsPerWorkgroup": &l.MaxComputeInvocationsPerWorkgroup,
		"maxComputeWorkgroupSizeX":          &l.MaxComputeWorkgroupSizeX,
		"maxComputeWorkgroupSizeY":          &l.MaxComputeWorkgroupSizeY,
		"maxComputeWorkgroupSizeZ":          &l.MaxComputeWorkgroupSizeZ,
		"maxComputeWorkgroupsPerDimension":  &l.MaxComputeWorkgroupsPerDimension,
		"maxStorageBuffersPerShaderStage":   &l.MaxStorageBuffersPerShaderStage,
		"maxBindGroups":                     &l.MaxBindGroups,
		"minStorageBufferOffsetAlignment":   &l.MinStorageBufferOffsetAlignment,
		"minUniformBufferOffsetAlignment":   &l.MinUniformBufferOffsetAlignment,
	}
}

func readLimits(v safejs.Value) (Limits, error) {
	var l Limits
	for name, dst := range l.fields() {
		x, err := v.Get(name)
		if err != nil {
			return l, err
		}
		f, err := x.Float()
		if err != nil {
			return l, fmt.Errorf("limit %s: %w", name, err)
		}
		*dst = uint64(f)
	}
	return l, nil
}

// AdapterInfo describes the adapter, for reports and benchmark tables.
type AdapterInfo struct {
	Vendor, Architecture, Device, Description string
	Fallback                                  bool
	// SubgroupMinSize and SubgroupMaxSize are the adapter's subgroup sizes (0 where the
	// browser does not report them).
	SubgroupMinSize, SubgroupMaxSize int
}

// CPU reports whether the adapter runs on the CPU: a fallback adapter, or SwiftShader
// (headless Chromium's WebGPU), which does not always say it is one. Kernels whose best
// shape differs between a GPU and a CPU (workgroup memory and barriers are cheap on the
// one and slow on the other) choose by it.
func (i AdapterInfo) CPU() bool {
	return i.Fallback || strings.Contains(strings.ToLower(i.Architecture), "swiftshader")
}

// Options tune RequestDevice.
type Options struct {
	// DefaultLimits requests the spec's default limits instead of the adapter's maxima
	// (tests of limit errors use it).
	DefaultLimits bool
	// DisableFeatures are optional features not to request even if the adapter has them
	// (to test the f32 path on an adapter with shader-f16, say).
	DisableFeatures []Feature
	// PowerPreference is "high-performance" (default) or "low-power".
	PowerPreference string
}

// Device is a GPUDevice with its queue, granted features and limits.
type Device struct {
	v, queue safejs.Value
	Info     AdapterInfo
	Limits   Limits
	features map[Feature]bool

	allocated atomic.Int64 // bytes of live buffers

	mu      sync.Mutex
	lostErr error
	lost    chan struct{}
	errs    []error // uncaptured errors, oldest first (capped)
	onError safejs.Func
}

// RequestDevice gets an adapter and a device with every optional feature the adapter has
// and (unless opts.DefaultLimits) its maximum limits.
func RequestDevice(opts Options) (*Device, error) {
	nav, err := safejs.Global().Get("navigator")
	if err != nil {
		return nil, err
	}
	g, err := nav.Get("gpu")
	if err != nil || g.IsUndefined() || g.IsNull() {
		return nil, fmt.Errorf("%w: navigator.gpu is missing (use a browser with WebGPU: Chrome/Edge 113+, or Chromium with --enable-unsafe-webgpu)", ErrNoWebGPU)
	}
	pref := opts.PowerPreference
	if pref == "" {
		pref = "high-performance"
	}
	p, err := g.Call("requestAdapter", map[string]any{"powerPreference": pref})
	if err != nil {
		return nil, err
	}
	adapter, err := Await(p)
	if err != nil {
		return nil, fmt.Errorf("requestAdapter: %w", err)
	}
	if adapter.IsNull() || adapter.IsUndefined() {
		return nil, fmt.Errorf("%w: the browser returned no GPU adapter", ErrNoWebGPU)
	}

	d := &Device{lost: make(chan struct{}), features: map[Feature]bool{}}
	if info, err := adapter.Get("info"); err == nil && info.Type() == safejs.TypeObject {
		d.Info = AdapterInfo{
			Vendor:       stringProp(info, "vendor"),
			Architecture: stringProp(info, "architecture"),
			Device:       stringProp(info, "device"),
			Description:  stringProp(info, "description"),
		}
		if fb, err := info.Get("isFallbackAdapter"); err == nil {
			d.Info.Fallback, _ = fb.Truthy()
		}
		for name, dst := range map[string]*int{"subgroupMinSize": &d.Info.SubgroupMinSize, "subgroupMaxSize": &d.Info.SubgroupMaxSize} {
			if v, err := info.Get(name); err == nil && v.Type() == safejs.TypeNumber {
				*dst, _ = v.Int()
			}
		}
	}

	adapterFeatures, err := adapter.Get("features")
	if err != nil {
		return nil, err
	}
	var required []any
	for _, f := range optionalFeatures {
		if has, err := adapterFeatures.Call("has", string(f)); err == nil {
			if ok, _ := has.Bool(); ok && !contains(opts.DisableFeatures, f) {
				required = append(required, string(f))
			}
		}
	}
	desc := map[string]any{"requiredFeatures": required, "label": "cogvlm"}
	if !opts.DefaultLimits {
		al, err := adapter.Get("limits")
		if err != nil {
			return nil, err
		}
		max, err := readLimits(al)
		if err != nil {
			return nil, err
		}
		req := map[string]any{}
		for name, v := range max.fields() {
			req[name] = float64(*v)
		}
		desc["requiredLimits"] = req
	}
	p, err = adapter.Call("requestDevice", desc)
	if err != nil {
		return nil, fmt.Errorf("requestDevice: %w", err)
	}
	dev, err := Await(p)
	if err != nil {
		return nil, fmt.Errorf("requestDevice: %w", err)
	}
	d.v = dev
	if d.queue, err = dev.Get("queue"); err != nil {
		return nil, err
	}
	lim, err := dev.Get("limits")
	if err != nil {
		return nil, err
	}
	if d.Limits, err = readLimits(lim); err != nil {
		return nil, err
	}
	df, err := dev.Get("features")
	if err != nil {
		return nil, err
	}
	for _, f := range optionalFeatures {
		if has, err := df.Call("has", string(f)); err == nil {
			d.features[f], _ = has.Bool()
		}
	}
	if err := d.watch(); err != nil {
		return nil, err
	}
	return d, nil
}

func contains(list []Feature, f Feature) bool {
	for _, x := range list {
		if x == f {
			return true
		}
	}
	return false
}

// Has reports whether the device was granted the feature.
func (d *Device) Has(f Feature) bool { return d.features[f] }

// JS returns the underlying GPUDevice (for the engine's JS-side plan replay).
func (d *Device) JS() safejs.Value { return d.v }

// watch turns device.lost and uncapturederror events into Go errors.
func (d *Device) watch() error {
	lostP, err := d.v.Get("lost")
	if err != nil {
		return err
	}
	go func() {
		info, err := Await(lostP)
		var lerr error
		if err != nil {
			lerr = fmt.Errorf("%w: %v", ErrDeviceLost, err)
		} else {
			lerr = fmt.Errorf("%w (%s): %s", ErrDeviceLost, stringProp(info, "reason"), stringProp(info, "message"))
		}
		d.mu.Lock()
		d.lostErr = lerr
		d.mu.Unlock()
		close(d.lost)
	}()
	d.onError, err = safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) (ret any) {
		defer func() { recover() }() // a JS event handler must never see a Go panic
		if len(args) == 0 {
			return nil
		}
		e, err := args[0].Get("error")
		if err != nil {
			return nil
		}
		d.mu.Lock()
		if len(d.errs) < 16 {
			d.errs = append(d.errs, fmt.Errorf("uncaptured GPU error: %w", JSError(e)))
		}
		d.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	_, err = d.v.Call("addEventListener", "uncapturederror", d.onError)
	return err
}

// Lost is closed when the device is lost.
func (d *Device) Lost() <-chan struct{} { return d.lost }

// Err returns the device-lost error, else the oldest uncaptured error (and forgets it), else nil.
func (d *Device) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lostErr != nil {
		return d.lostErr
	}
	if len(d.errs) > 0 {
		e := d.errs[0]
		d.errs = d.errs[1:]
		return e
	}
	return nil
}

// Destroy destroys the device; Lost fires with reason "destroyed".
func (d *Device) Destroy() {
	d.v.Call("destroy")
}

// scoped runs fn inside validation and out-of-memory error scopes and returns the first
// error: fn's own, a validation error, or an out-of-memory error (wrapping ErrOutOfMemory).
// Each pop waits for the GPU process: use it around creation calls, not per dispatch.
func (d *Device) scoped(what string, fn func() error) error {
	if err := d.Err(); err != nil && errors.Is(err, ErrDeviceLost) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := d.v.Call("pushErrorScope", "out-of-memory"); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := d.v.Call("pushErrorScope", "validation"); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	ferr := fn()
	validation := d.popScope()
	oom := d.popScope()
	switch {
	case ferr != nil:
		return fmt.Errorf("%s: %w", what, ferr)
	case validation != nil:
		return fmt.Errorf("%s: %w", what, validation)
	case oom != nil:
		return fmt.Errorf("%s: %w: %v", what, ErrOutOfMemory, oom)
	}
	return nil
}

func (d *Device) popScope() error {
	p, err := d.v.Call("popErrorScope")
	if err != nil {
		return err
	}
	v, err := Await(p)
	if err != nil {
		return err
	}
	if v.IsNull() || v.IsUndefined() {
		return nil
	}
	return JSError(v)
}
