//go:build js && wasm

package gpu

import (
	"fmt"

	"github.com/hack-pad/safejs"
)

// Binding is one buffer binding of a bind group. Size 0 means "to the end of the buffer".
type Binding struct {
	Binding      int
	Buffer       *Buffer
	Offset, Size uint64
}

// BindGroup is a GPUBindGroup.
type BindGroup struct {
	v     safejs.Value
	Label string
}

// JS returns the underlying GPUBindGroup.
func (g *BindGroup) JS() safejs.Value { return g.v }

// CreateBindGroup binds buffers to group `group` of the pipeline's automatic layout.
// Ranges outside a buffer and bindings beyond the device's binding-size limits or offset
// alignments fail with a clear error (ErrLimit for limits) before WebGPU is called; any
// other validation failure comes back from the error scope.
func (d *Device) CreateBindGroup(label string, p *ComputePipeline, group int, entries ...Binding) (*BindGroup, error) {
	js := make([]any, len(entries))
	for i, e := range entries {
		if e.Buffer == nil {
			return nil, fmt.Errorf("bind group %q: binding %d has no buffer", label, e.Binding)
		}
		size := e.Size
		if size == 0 {
			size = e.Buffer.Size - min(e.Offset, e.Buffer.Size)
		}
		if e.Offset+size > e.Buffer.Size {
			return nil, fmt.Errorf("bind group %q: binding %d: range [%d, %d) is outside buffer %q of %d bytes",
				label, e.Binding, e.Offset, e.Offset+size, e.Buffer.Label, e.Buffer.Size)
		}
		if e.Buffer.Usage&UsageStorage != 0 {
			if size > d.Limits.MaxStorageBufferBindingSize {
				return nil, fmt.Errorf("bind group %q: binding %d (buffer %q): %d bytes %w maxStorageBufferBindingSize %d",
					label, e.Binding, e.Buffer.Label, size, ErrLimit, d.Limits.MaxStorageBufferBindingSize)
			}
			if a := d.Limits.MinStorageBufferOffsetAlignment; a > 0 && e.Offset%a != 0 {
				return nil, fmt.Errorf("bind group %q: binding %d: offset %d is not a multiple of minStorageBufferOffsetAlignment %d",
					label, e.Binding, e.Offset, a)
			}
		} else if e.Buffer.Usage&UsageUniform != 0 {
			if size > d.Limits.MaxUniformBufferBindingSize {
				return nil, fmt.Errorf("bind group %q: binding %d (buffer %q): %d bytes %w maxUniformBufferBindingSize %d",
					label, e.Binding, e.Buffer.Label, size, ErrLimit, d.Limits.MaxUniformBufferBindingSize)
			}
		}
		js[i] = map[string]any{
			"binding":  e.Binding,
			"resource": map[string]any{"buffer": e.Buffer.v, "offset": float64(e.Offset), "size": float64(size)},
		}
	}
	g := &BindGroup{Label: label}
	err := d.scoped("bind group "+label, func() error {
		layout, err := p.v.Call("getBindGroupLayout", group)
		if err != nil {
			return err
		}
		g.v, err = d.v.Call("createBindGroup", map[string]any{"label": label, "layout": layout, "entries": js})
		return err
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// CommandEncoder records passes and copies for one submit.
type CommandEncoder struct {
	v safejs.Value
	d *Device
}

// CommandBuffer is a finished command encoder.
type CommandBuffer struct{ v safejs.Value }

// CreateCommandEncoder starts recording.
func (d *Device) CreateCommandEncoder(label string) (*CommandEncoder, error) {
	v, err := d.v.Call("createCommandEncoder", map[string]any{"label": label})
	if err != nil {
		return nil, err
	}
	return &CommandEncoder{v: v, d: d}, nil
}

// TimestampWrites asks a compute pass to write its begin and end times into a query set.
type TimestampWrites struct {
	QuerySet   *QuerySet
	Begin, End int
}

// ComputePass records dispatches.
type ComputePass struct {
	v safejs.Value
	d *Device
}

// BeginComputePass starts a compute pass, with timestamp writes when ts is not nil.
func (e *CommandEncoder) BeginComputePass(label string, ts *TimestampWrites) (*ComputePass, error) {
	desc := map[string]any{"label": label}
	if ts != nil {
		desc["timestampWrites"] = map[string]any{
			"querySet": ts.QuerySet.v, "beginningOfPassWriteIndex": ts.Begin, "endOfPassWriteIndex": ts.End,
		}
	}
	v, err := e.v.Call("beginComputePass", desc)
	if err != nil {
		return nil, err
	}
	return &ComputePass{v: v, d: e.d}, nil
}

// SetPipeline selects the pipeline for following dispatches.
func (p *ComputePass) SetPipeline(pl *ComputePipeline) error {
	_, err := p.v.Call("setPipeline", pl.v)
	return err
}

// SetBindGroup binds a group, with dynamic offsets for layouts that use them.
func (p *ComputePass) SetBindGroup(index int, g *BindGroup, dynamicOffsets ...uint32) error {
	if len(dynamicOffsets) == 0 {
		_, err := p.v.Call("setBindGroup", index, g.v)
		return err
	}
	offs := make([]any, len(dynamicOffsets))
	for i, o := range dynamicOffsets {
		offs[i] = o
	}
	_, err := p.v.Call("setBindGroup", index, g.v, offs)
	return err
}

// Dispatch runs x×y×z workgroups; counts beyond maxComputeWorkgroupsPerDimension fail with ErrLimit.
func (p *ComputePass) Dispatch(x, y, z uint32) error {
	lim := p.d.Limits.MaxComputeWorkgroupsPerDimension
	if uint64(x) > lim || uint64(y) > lim || uint64(z) > lim {
		return fmt.Errorf("dispatch %d×%d×%d workgroups %w maxComputeWorkgroupsPerDimension %d", x, y, z, ErrLimit, lim)
	}
	_, err := p.v.Call("dispatchWorkgroups", x, y, z)
	return err
}

// End closes the pass.
func (p *ComputePass) End() error {
	_, err := p.v.Call("end")
	return err
}

// CopyBufferToBuffer records a copy of size bytes.
func (e *CommandEncoder) CopyBufferToBuffer(src *Buffer, srcOffset uint64, dst *Buffer, dstOffset, size uint64) error {
	_, err := e.v.Call("copyBufferToBuffer", src.v, float64(srcOffset), dst.v, float64(dstOffset), float64(size))
	return err
}

// ResolveQuerySet writes count query results starting at first into dst at offset.
func (e *CommandEncoder) ResolveQuerySet(q *QuerySet, first, count int, dst *Buffer, offset uint64) error {
	_, err := e.v.Call("resolveQuerySet", q.v, first, count, dst.v, float64(offset))
	return err
}

// Finish ends recording.
func (e *CommandEncoder) Finish() (*CommandBuffer, error) {
	v, err := e.v.Call("finish")
	if err != nil {
		return nil, err
	}
	return &CommandBuffer{v: v}, nil
}

// Submit queues command buffers. Validation errors inside them surface through Sync/Err.
func (d *Device) Submit(cbs ...*CommandBuffer) error {
	arr := make([]any, len(cbs))
	for i, c := range cbs {
		arr[i] = c.v
	}
	_, err := d.queue.Call("submit", arr)
	return err
}

// Sync waits until submitted work is done and returns the device-lost error or the oldest
// uncaptured error, if any.
func (d *Device) Sync() error {
	p, err := d.queue.Call("onSubmittedWorkDone")
	if err != nil {
		return err
	}
	if _, err := Await(p); err != nil {
		return err
	}
	return d.Err()
}

// QuerySet is a set of timestamp queries.
type QuerySet struct {
	v     safejs.Value
	Count int
}

// CreateTimestampQuerySet needs FeatureTimestampQuery.
func (d *Device) CreateTimestampQuerySet(label string, count int) (*QuerySet, error) {
	if !d.Has(FeatureTimestampQuery) {
		return nil, fmt.Errorf("query set %q: the device has no %s", label, FeatureTimestampQuery)
	}
	q := &QuerySet{Count: count}
	err := d.scoped("query set "+label, func() error {
		var err error
		q.v, err = d.v.Call("createQuerySet", map[string]any{"label": label, "type": "timestamp", "count": count})
		return err
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}

// Destroy frees the query set.
func (q *QuerySet) Destroy() { q.v.Call("destroy") }
