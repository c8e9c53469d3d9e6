//go:build js && wasm

package gpu

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/hack-pad/safejs"
)

// BufferUsage is a set of GPUBufferUsage flags.
type BufferUsage uint32

const (
	UsageMapRead      BufferUsage = 0x0001
	UsageMapWrite     BufferUsage = 0x0002
	UsageCopySrc      BufferUsage = 0x0004
	UsageCopyDst      BufferUsage = 0x0008
	UsageUniform      BufferUsage = 0x0040
	UsageStorage      BufferUsage = 0x0080
	UsageIndirect     BufferUsage = 0x0100
	UsageQueryResolve BufferUsage = 0x0200
)

// Buffer is a GPUBuffer with the size and usage it was created with.
type Buffer struct {
	v         safejs.Value
	Label     string
	Size      uint64
	Usage     BufferUsage
	dev       *Device
	destroyed bool
}

// JS returns the underlying GPUBuffer.
func (b *Buffer) JS() safejs.Value { return b.v }

// Destroy frees the buffer's GPU memory now rather than at garbage collection.
func (b *Buffer) Destroy() {
	if b != nil && !b.destroyed {
		b.v.Call("destroy")
		b.destroyed = true
		b.dev.allocated.Add(-int64(b.Size))
	}
}

// CreateBuffer creates a buffer of size bytes, rounded up to a multiple of 4 (the unit of
// copies and writeBuffer). Sizes beyond maxBufferSize fail with ErrLimit before WebGPU is
// called; allocation failures wrap ErrOutOfMemory.
func (d *Device) CreateBuffer(label string, size uint64, usage BufferUsage) (*Buffer, error) {
	size = (size + 3) &^ 3
	if size == 0 {
		size = 4
	}
	if size > d.Limits.MaxBufferSize {
		return nil, fmt.Errorf("buffer %q: %d bytes %w maxBufferSize %d", label, size, ErrLimit, d.Limits.MaxBufferSize)
	}
	b := &Buffer{Label: label, Size: size, Usage: usage, dev: d}
	err := d.scoped(fmt.Sprintf("buffer %q (%d bytes)", label, size), func() error {
		v, err := d.v.Call("createBuffer", map[string]any{"label": label, "size": float64(size), "usage": int(usage)})
		b.v = v
		return err
	})
	if err != nil {
		return nil, err
	}
	d.allocated.Add(int64(size))
	return b, nil
}

// Allocated is the bytes of the device's buffers that are not destroyed.
func (d *Device) Allocated() int64 { return d.allocated.Load() }

// WriteBufferJS queues a write of a JS ArrayBuffer or TypedArray into b at offset. The bytes
// go from JS memory to the GPU without entering the Go heap: this is how weights are uploaded.
func (d *Device) WriteBufferJS(b *Buffer, offset uint64, data safejs.Value) error {
	n, err := byteLength(data)
	if err != nil {
		return fmt.Errorf("write buffer %q: %w", b.Label, err)
	}
	if offset%4 != 0 || n%4 != 0 {
		return fmt.Errorf("write buffer %q: offset %d and size %d must be multiples of 4", b.Label, offset, n)
	}
	if offset+n > b.Size {
		return fmt.Errorf("write buffer %q: %d bytes at offset %d exceed its size %d", b.Label, n, offset, b.Size)
	}
	if _, err := d.queue.Call("writeBuffer", b.v, float64(offset), data); err != nil {
		return fmt.Errorf("write buffer %q: %w", b.Label, err)
	}
	return nil
}

func byteLength(v safejs.Value) (uint64, error) {
	bl, err := v.Get("byteLength")
	if err != nil {
		return 0, err
	}
	if bl.Type() != safejs.TypeNumber {
		return 0, fmt.Errorf("not an ArrayBuffer or TypedArray")
	}
	f, err := bl.Float()
	return uint64(f), err
}

// WriteBuffer queues a write of Go bytes (parameters, test inputs, token ids: small data).
func (d *Device) WriteBuffer(b *Buffer, offset uint64, data []byte) error {
	arr, err := BytesToJS(data)
	if err != nil {
		return fmt.Errorf("write buffer %q: %w", b.Label, err)
	}
	return d.WriteBufferJS(b, offset, arr)
}

// BytesToJS copies data into a new JS Uint8Array.
func BytesToJS(data []byte) (safejs.Value, error) {
	ctor, err := safejs.Global().Get("Uint8Array")
	if err != nil {
		return safejs.Undefined(), err
	}
	arr, err := ctor.New(len(data))
	if err != nil {
		return safejs.Undefined(), err
	}
	if _, err := safejs.CopyBytesToJS(arr, data); err != nil {
		return safejs.Undefined(), err
	}
	return arr, nil
}

// ReadBuffer copies size bytes at offset out of b (which needs UsageCopySrc) through a
// staging buffer, waits for the GPU, and returns them.
func (d *Device) ReadBuffer(b *Buffer, offset, size uint64) ([]byte, error) {
	if offset%4 != 0 || size%4 != 0 || offset+size > b.Size {
		return nil, fmt.Errorf("read buffer %q: range [%d, %d) must be 4-byte aligned and within its size %d", b.Label, offset, offset+size, b.Size)
	}
	staging, err := d.CreateBuffer(b.Label+" (read-back)", size, UsageMapRead|UsageCopyDst)
	if err != nil {
		return nil, err
	}
	defer staging.Destroy()
	enc, err := d.CreateCommandEncoder("read-back")
	if err != nil {
		return nil, err
	}
	if err := enc.CopyBufferToBuffer(b, offset, staging, 0, size); err != nil {
		return nil, err
	}
	cb, err := enc.Finish()
	if err != nil {
		return nil, err
	}
	if err := d.Submit(cb); err != nil {
		return nil, err
	}
	p, err := staging.v.Call("mapAsync", 1 /* GPUMapMode.READ */)
	if err != nil {
		return nil, err
	}
	if _, err := Await(p); err != nil {
		if lost := d.Err(); lost != nil {
			return nil, fmt.Errorf("read buffer %q: %w", b.Label, lost)
		}
		return nil, fmt.Errorf("read buffer %q: mapAsync: %w", b.Label, err)
	}
	ab, err := staging.v.Call("getMappedRange")
	if err != nil {
		return nil, err
	}
	ctor, err := safejs.Global().Get("Uint8Array")
	if err != nil {
		return nil, err
	}
	view, err := ctor.New(ab)
	if err != nil {
		return nil, err
	}
	out := make([]byte, size)
	if _, err := safejs.CopyBytesToGo(out, view); err != nil {
		return nil, err
	}
	staging.v.Call("unmap")
	return out, nil
}

// Float32Bytes returns the little-endian bytes of v (WebGPU's byte order).
func Float32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// BytesFloat32 decodes little-endian float32s.
func BytesFloat32(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// Uint32Bytes returns the little-endian bytes of v.
func Uint32Bytes(v []uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}
