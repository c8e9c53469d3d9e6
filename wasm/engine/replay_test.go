//go:build js && wasm

package engine

import (
	"testing"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels/kernelstest"
)

// counter wraps methods of WebGPU prototypes (and the replayer's run) to count the calls
// made while a decode step runs, separating those issued by the replayer's loop from
// those issued directly by Go.
type counter struct {
	inReplay       bool
	fromGo, inLoop int
	replays        int
	restore        []func()
}

func (c *counter) wrap(t *testing.T, obj safejs.Value, method string, isReplay bool) {
	t.Helper()
	orig, err := obj.Get(method)
	if err != nil || orig.Type() != safejs.TypeFunction {
		t.Fatalf("no method %s to wrap", method)
	}
	f, err := safejs.FuncOf(func(this safejs.Value, args []safejs.Value) any {
		if isReplay {
			c.replays++
			c.inReplay = true
			defer func() { c.inReplay = false }()
		} else if c.inReplay {
			c.inLoop++
		} else {
			c.fromGo++
		}
		a := make([]any, len(args))
		for i, v := range args {
			a[i] = v
		}
		v, err := orig.Call("apply", this, a)
		if err != nil {
			t.Errorf("%s: %v", method, err)
		}
		return v
	})
	if err != nil {
		t.Fatal(err)
	}
	obj.Set(method, f)
	c.restore = append(c.restore, func() { obj.Set(method, orig); f.Release() })
}

func proto(t *testing.T, class string) safejs.Value {
	t.Helper()
	c, err := safejs.Global().Get(class)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Get("prototype")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCallsPerToken: with the replayer supplied (web/cogvlm-replay.js, as the worker hands
// it to the engine), a decode step costs a constant number of Go→JS WebGPU calls (the step
// uniform, the position, and one replay call), however many dispatches the plan has.
func TestCallsPerToken(t *testing.T) {
	replay, err := kernelstest.Replayer()
	if err != nil {
		t.Fatal(err)
	}
	// The module's namespace is read-only: the counted run sits in an object of its own.
	obj, _ := safejs.Global().Get("Object")
	r, err := obj.New()
	if err != nil {
		t.Fatal(err)
	}
	run, _ := replay.Get("run")
	r.Set("run", run)
	k := testKernels(t)
	if err := k.SetReplayer(r); err != nil {
		t.Fatal(err)
	}
	defer k.SetReplayer(replay)
	p := loadTestPackage(t, k, "tiny-f32")
	defer p.Release()
	d, err := NewDecoder(k, p, 64, 16, kernels.KVF16)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Prefill(model.Inputs{InputIDs: []int{1, 450}, TokenTypeIDs: []int{0, 0}, PositionIDs: []int{0, 1}}, nil); err != nil {
		t.Fatal(err)
	}
	c := &counter{}
	c.wrap(t, r, "run", true)
	for _, m := range []string{"writeBuffer", "submit"} {
		c.wrap(t, proto(t, "GPUQueue"), m, false)
	}
	for _, m := range []string{"createCommandEncoder", "createBindGroup", "createBuffer"} {
		c.wrap(t, proto(t, "GPUDevice"), m, false)
	}
	for _, m := range []string{"beginComputePass", "finish", "copyBufferToBuffer"} {
		c.wrap(t, proto(t, "GPUCommandEncoder"), m, false)
	}
	for _, m := range []string{"setPipeline", "setBindGroup", "dispatchWorkgroups", "end"} {
		c.wrap(t, proto(t, "GPUComputePassEncoder"), m, false)
	}
	const steps = 3
	for range steps {
		if _, err := d.Decode(); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range c.restore {
		f()
	}
	perToken := float64(c.fromGo+c.replays) / steps
	t.Logf("per decode token: %.0f WebGPU calls from Go + %.0f replay call, %.0f calls inside replay.js for a plan of %d dispatches",
		float64(c.fromGo)/steps, float64(c.replays)/steps, float64(c.inLoop)/steps, len(d.decode.Steps))
	if c.replays != steps || perToken > 4 {
		t.Errorf("%v Go→JS WebGPU calls per token (want a constant ≤ 4: two writeBuffer, one replay)", perToken)
	}
	if c.inLoop < 3*len(d.decode.Steps) {
		t.Errorf("replay issued %d calls for %d dispatches", c.inLoop/steps, len(d.decode.Steps))
	}
}
