//go:build js && wasm

package kernels

import "github.com/cogvlm-web/cogvlm-web/wasm/gpu"

// StepState is the 16-byte uniform of per-step values every plan reads (the Step struct
// of the shaders): a decode step rewrites it with one writeBuffer and replays an
// unchanged plan.
type StepState struct {
	Buf *gpu.Buffer
}

// NewStepState allocates the uniform.
func (k *Kernels) NewStepState(label string) (*StepState, error) {
	b, err := k.Dev.CreateBuffer(label, 16, gpu.UsageUniform|gpu.UsageCopyDst|gpu.UsageCopySrc) // CopySrc: the debug mode reads it
	if err != nil {
		return nil, err
	}
	return &StepState{Buf: b}, nil
}

// Set queues the values for the next submit: kvRows valid KV-cache rows after this step,
// whose first new row is writeRow.
func (s *StepState) Set(d *gpu.Device, kvRows, writeRow int) error {
	return d.WriteBuffer(s.Buf, 0, gpu.Uint32Bytes([]uint32{uint32(kvRows), uint32(writeRow), 0, 0}))
}

func (s *StepState) tensor() Tensor { return Tensor{Buf: s.Buf, Size: 16} }

// KVPrecision is the element type of a KV cache.
type KVPrecision int

const (
	// KVF32 stores keys and values as f32, as the CPU reference does (the golden-logit
	// tests). The zero value, so a KVCache literal of plain f32 tensors is one.
	KVF32 KVPrecision = iota
	// KVF16 stores them as f16, two to a u32 (pack2x16float, core WGSL, so every adapter
	// has it): half the memory of f32 (CogVLM-17B's 2048 positions: 1.07 GB instead of
	// 2.15 GB) and half the bytes decode attention reads. The app's choice.
	KVF16
)

// BytesPerValue is the cache's size per key or value element.
func (p KVPrecision) BytesPerValue() int {
	if p == KVF16 {
		return 2
	}
	return 4
}

func (p KVPrecision) String() string {
	if p == KVF16 {
		return "f16"
	}
	return "f32"
}

// KVCache is one layer's keys and values, [rows, heads·head_dim] each, in Precision; or
// any k and v of that layout (the vision tower's, in f32).
type KVCache struct {
	K, V      Tensor
	Precision KVPrecision
}

func (c KVCache) f16() float64 {
	if c.Precision == KVF16 {
		return 1
	}
	return 0
}
