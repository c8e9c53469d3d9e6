//go:build js && wasm

// Package kernels is CogVLM's op layer on WebGPU: it compiles the WGSL in shaders/,
// caches pipelines by a comparable key, packs each dispatch's Params into uniform slots,
// and records dispatches into a Plan that is built once and replayed every step (by the
// host's replayer, web/cogvlm-replay.js, when SetReplayer gave one). It knows tensors and
// ops, not the model: wasm/engine builds the decoder and the vision tower from them.
//
// Every op is in four places under one name, its shared arguments in one order: its
// kernels shaders/x*.wgsl, the method Kernels.X in x.go here, its CPU twin model.X and
// TestX comparing the two (ops_rule_test.go maps each WGSL file to its op and holds the
// op layer to the rule). The debug mode (RunDebug) checks each dispatch against its twin.
package kernels

import (
	"fmt"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/shaders"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// Const is one `override` constant of a pipeline.
type Const struct {
	Name  string
	Value float64
}

// PipelineKey identifies a pipeline: shader file, entry point and up to four override
// constants. It is comparable, so it is the cache key as it is.
type PipelineKey struct {
	Shader string
	Entry  string
	Consts [4]Const
}

// Kernels owns the device's shader modules and pipelines.
type Kernels struct {
	Dev       *gpu.Device
	modules   map[string]*gpu.ShaderModule
	pipelines map[PipelineKey]*gpu.ComputePipeline
	// Params hands out the dispatches' parameter slots; a plan built per request (a
	// prefill) brackets itself with Params.Mark and Release.
	Params *ParamArena
	zeros  *gpu.Buffer  // see noBias
	replay safejs.Value // see SetReplayer
	// DebugTolerance > 0 turns on the debug mode: every plan runs dispatch by dispatch
	// and each result is compared with its CPU twin (RunDebug).
	DebugTolerance float64
	// NoSubgroups keeps the workgroup-memory kernels on an adapter with `subgroups` (to
	// test both paths on one adapter).
	NoSubgroups bool
	// PrefillQ4 forces MatMulQ4's kernel above matVecMaxRows rows (PrefillAuto: its
	// rule), to test and time both on one adapter.
	PrefillQ4 PrefillQ4
	// NoF16 keeps the f32 kernels on an adapter with `shader-f16` (to force the f32 path,
	// and to test and time both on one adapter); see UsesF16.
	NoF16 bool
	// NoAttentionTiles keeps several query rows on the one-row attention kernel (to test
	// and time both).
	NoAttentionTiles bool
}

// NewKernels prepares an empty cache on d.
func NewKernels(d *gpu.Device) *Kernels {
	return &Kernels{
		Dev:       d,
		modules:   map[string]*gpu.ShaderModule{},
		pipelines: map[PipelineKey]*gpu.ComputePipeline{},
		Params:    &ParamArena{dev: d},
	}
}

// Pipeline returns the cached pipeline for key, compiling the shader on first use.
func (k *Kernels) Pipeline(key PipelineKey) (*gpu.ComputePipeline, error) {
	if p, ok := k.pipelines[key]; ok {
		return p, nil
	}
	mod, ok := k.modules[key.Shader]
	if !ok {
		src, err := shaders.Source(key.Shader)
		if err != nil {
			return nil, err
		}
		if mod, err = k.Dev.CreateShaderModule(key.Shader, src); err != nil {
			return nil, err
		}
		k.modules[key.Shader] = mod
	}
	consts := map[string]float64{}
	for _, c := range key.Consts {
		if c.Name != "" {
			consts[c.Name] = c.Value
		}
	}
	label := key.Shader
	if key.Entry != "" {
		label += ":" + key.Entry
	}
	p, err := k.Dev.CreateComputePipeline(gpu.PipelineDesc{Label: label, Module: mod, EntryPoint: key.Entry, Constants: consts})
	if err != nil {
		return nil, err
	}
	k.pipelines[key] = p
	return p, nil
}

// Tensor is a range of a GPU buffer bound as one shader array: a weight inside a shard
// buffer, or an activation.
type Tensor struct {
	Buf    *gpu.Buffer
	Offset uint64
	Size   uint64 // bytes; 0 means to the end of Buf
}

// Whole binds all of b.
func Whole(b *gpu.Buffer) Tensor { return Tensor{Buf: b} }

// Rows views rows [start, start+n) of t, a [*, width] f32 tensor.
func (t Tensor) Rows(start, n, width int) Tensor {
	return Tensor{Buf: t.Buf, Offset: t.Offset + uint64(4*start*width), Size: uint64(4 * n * width)}
}

// bindFrom splits t into a binding that starts at t's offset rounded down to the device's
// storage offset alignment and the floats from there to t's first one, which the kernel
// adds to its indices (the Params fields x_start, out_start, …). Row ranges of
// activations — an expert's rows, the image rows, the last prompt row — start anywhere:
// a row of a hidden size that is not a multiple of 64 floats is not a multiple of the
// 256-byte alignment. At CogVLM's sizes the offsets are aligned and the start is 0.
func (k *Kernels) bindFrom(t Tensor) (Tensor, int) {
	align := k.Dev.Limits.MinStorageBufferOffsetAlignment
	if align == 0 { // not reported: WebGPU's default
		align = 256
	}
	rem := t.Offset % align
	b := Tensor{Buf: t.Buf, Offset: t.Offset - rem}
	if t.Size != 0 {
		b.Size = t.Size + rem
	}
	return b, int(rem / 4)
}

// offsets is the OFFSETS override of a kernel whose bindings start at starts (bindFrom):
// set only where one is not 0, so that at CogVLM's sizes the kernels compile with constant
// zero starts, exactly as before they had any.
func offsets(starts ...int) Const {
	for _, s := range starts {
		if s != 0 {
			return Const{"OFFSETS", 1}
		}
	}
	return Const{}
}

func (t Tensor) binding(i int) gpu.Binding {
	return gpu.Binding{Binding: i, Buffer: t.Buf, Offset: t.Offset, Size: t.Size}
}

// Step is one recorded dispatch: everything it needs is bound once, at plan time.
type Step struct {
	Label    string
	Pipeline *gpu.ComputePipeline
	Group    *gpu.BindGroup
	X, Y, Z  uint32
	twin     twin // the CPU twin, for RunDebug
}

// step builds a Step for key with Params p (bound at binding 0) and the tensors at
// bindings 1, 2, ….
func (k *Kernels) step(label string, key PipelineKey, p []byte, x, y, z uint32, tensors ...Tensor) (Step, error) {
	pl, err := k.Pipeline(key)
	if err != nil {
		return Step{}, err
	}
	slot, err := k.Params.Alloc(p)
	if err != nil {
		return Step{}, err
	}
	entries := []gpu.Binding{slot.binding(0)}
	for i, t := range tensors {
		if t.Buf == nil {
			return Step{}, fmt.Errorf("%s: tensor %d has no buffer", label, i+1)
		}
		entries = append(entries, t.binding(i+1))
	}
	g, err := k.Dev.CreateBindGroup(label, pl, 0, entries...)
	if err != nil {
		return Step{}, err
	}
	return Step{Label: label, Pipeline: pl, Group: g, X: x, Y: y, Z: z}, nil
}

// OverheadBytes is what the kernels themselves allocate: parameter slots and the no-bias
// buffer (the memory plan counts the model's buffers).
func (k *Kernels) OverheadBytes() int64 {
	n := int64(len(k.Params.bufs)) * paramBufferSize
	if k.zeros != nil {
		n += int64(k.zeros.Size)
	}
	return n
}

// noBias returns a 16-byte buffer bound where a kernel has a bias slot but the layer has
// no bias (the slot is always bound; has_bias = 0 keeps it unread).
func (k *Kernels) noBias() (Tensor, error) {
	if k.zeros == nil {
		b, err := k.Dev.CreateBuffer("no-bias", 16, gpu.UsageStorage)
		if err != nil {
			return Tensor{}, err
		}
		k.zeros = b
	}
	return Whole(k.zeros), nil
}

// Workgroup sizes. 256 is the WebGPU default maximum of invocations per workgroup, so
// every adapter runs these.
const (
	elementwiseWG = 256
	rowWG         = 256
	// Grid-stride element-wise kernels cap their grid; any n still works.
	maxElementwiseGroups = 4096
)

func elementwiseGroups(n int) uint32 {
	return uint32(min(maxElementwiseGroups, max(1, (n+elementwiseWG-1)/elementwiseWG)))
}
