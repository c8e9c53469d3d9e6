//go:build js && wasm

package kernels

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// Plan is a list of dispatches recorded once and replayed: a decode step's plan never
// changes, only the per-step uniform values do.
type Plan struct {
	Steps []Step
	js    safejs.Value // the compiled form for the replayer, made on first use
}

// Add appends steps.
func (p *Plan) Add(s ...Step) { p.Steps = append(p.Steps, s...) }

// Encode records the plan into one compute pass.
func (p *Plan) Encode(pass *gpu.ComputePass) error {
	for _, s := range p.Steps {
		if err := pass.SetPipeline(s.Pipeline); err != nil {
			return fmt.Errorf("%s: %w", s.Label, err)
		}
		if err := pass.SetBindGroup(0, s.Group); err != nil {
			return fmt.Errorf("%s: %w", s.Label, err)
		}
		if err := pass.Dispatch(s.X, s.Y, s.Z); err != nil {
			return fmt.Errorf("%s: %w", s.Label, err)
		}
	}
	return nil
}

// jsObject builds a JS object whose fields may hold JS values (safejs.ValueOf does not
// unwrap nested safejs values; Set does).
func jsObject(fields map[string]any) (safejs.Value, error) {
	ctor, err := safejs.Global().Get("Object")
	if err != nil {
		return safejs.Undefined(), err
	}
	obj, err := ctor.New()
	if err != nil {
		return safejs.Undefined(), err
	}
	for k, v := range fields {
		if err := obj.Set(k, v); err != nil {
			return safejs.Undefined(), err
		}
	}
	return obj, nil
}

// SetReplayer hands the kernels the JS half of Run: web/cogvlm-replay.js's module, an
// object with run(device, plan, readback) that encodes a whole plan in one Go→JS call.
// The host supplies it (the worker through the engine object's load, the tests through
// kernelstest.Replayer); nothing is looked up globally. Without one (undefined or null)
// plans are encoded from Go, three Go→JS calls per dispatch, with the same result.
func (k *Kernels) SetReplayer(r safejs.Value) error {
	if r.IsUndefined() || r.IsNull() {
		k.replay = safejs.Undefined()
		return nil
	}
	if run, err := r.Get("run"); err != nil || run.Type() != safejs.TypeFunction {
		return errors.New("replay: want an object with run(device, plan, readback): web/cogvlm-replay.js's module")
	}
	k.replay = r
	return nil
}

// replayer returns the replayer SetReplayer gave, or false without one.
func (k *Kernels) replayer() (safejs.Value, bool) {
	return k.replay, k.replay.Type() == safejs.TypeObject
}

// compiled returns the plan as {pipelines, groups, dims} for the replayer, building it once.
func (p *Plan) compiled() (safejs.Value, error) {
	if p.js.Type() == safejs.TypeObject {
		return p.js, nil
	}
	pipelines := make([]any, len(p.Steps))
	groups := make([]any, len(p.Steps))
	dims := make([]uint32, 0, 3*len(p.Steps))
	for i, s := range p.Steps {
		pipelines[i], groups[i] = s.Pipeline.JS(), s.Group.JS()
		dims = append(dims, s.X, s.Y, s.Z)
	}
	u32, err := safejs.Global().Get("Uint32Array")
	if err != nil {
		return safejs.Undefined(), err
	}
	dimsJS, err := u32.New(len(dims))
	if err != nil {
		return safejs.Undefined(), err
	}
	u8, err := safejs.Global().Get("Uint8Array")
	if err != nil {
		return safejs.Undefined(), err
	}
	buf, _ := dimsJS.Get("buffer")
	view, err := u8.New(buf)
	if err != nil {
		return safejs.Undefined(), err
	}
	if _, err := safejs.CopyBytesToJS(view, gpu.Uint32Bytes(dims)); err != nil {
		return safejs.Undefined(), err
	}
	p.js, err = jsObject(map[string]any{"pipelines": pipelines, "groups": groups, "dims": dimsJS})
	return p.js, err
}

// Run encodes the plan into one command buffer and submits it: one submit per step, and
// with a replayer (SetReplayer), one Go→JS call.
func (k *Kernels) Run(p *Plan) error {
	if k.DebugTolerance > 0 {
		return k.RunDebug(p, k.DebugTolerance)
	}
	if r, ok := k.replayer(); ok {
		plan, err := p.compiled()
		if err != nil {
			return err
		}
		_, err = r.Call("run", k.Dev.JS(), plan, safejs.Null())
		return err
	}
	return k.runFromGo(p)
}

// RunRead is Run followed by reading the u32 at src (4 bytes) through staging, a
// MapRead|CopyDst buffer of at least 4 bytes: a decode step and its token id in one
// submit and one round trip.
func (k *Kernels) RunRead(p *Plan, src Tensor, staging *gpu.Buffer) (uint32, error) {
	r, ok := k.replayer()
	if !ok || k.DebugTolerance > 0 {
		if err := k.Run(p); err != nil {
			return 0, err
		}
		b, err := k.Dev.ReadBuffer(src.Buf, src.Offset, 4)
		if err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint32(b), nil
	}
	plan, err := p.compiled()
	if err != nil {
		return 0, err
	}
	rb, err := jsObject(map[string]any{"src": src.Buf.JS(), "srcOffset": float64(src.Offset), "staging": staging.JS()})
	if err != nil {
		return 0, err
	}
	promise, err := r.Call("run", k.Dev.JS(), plan, rb)
	if err != nil {
		return 0, err
	}
	v, err := gpu.Await(promise)
	if err != nil {
		if lost := k.Dev.Err(); lost != nil {
			return 0, lost
		}
		return 0, err
	}
	n, err := v.Float()
	return uint32(n), err
}

// runFromGo encodes the plan with three Go→JS calls per dispatch (without a replayer).
func (k *Kernels) runFromGo(p *Plan) error {
	enc, err := k.Dev.CreateCommandEncoder("plan")
	if err != nil {
		return err
	}
	pass, err := enc.BeginComputePass("plan", nil)
	if err != nil {
		return err
	}
	if err := p.Encode(pass); err != nil {
		return err
	}
	if err := pass.End(); err != nil {
		return err
	}
	cb, err := enc.Finish()
	if err != nil {
		return err
	}
	return k.Dev.Submit(cb)
}
