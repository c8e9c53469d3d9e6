//go:build js && wasm

package kernels

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels/kernelstest"
)

// TestRunReplays: with the replayer the host supplies (SetReplayer), Run and RunRead
// encode a plan in one call of its run; without one, from Go; the results are the same.
func TestRunReplays(t *testing.T) {
	k := NewKernels(kernels(t).Dev) // its own: the shared kernels keep their replayer
	replay, err := kernelstest.Replayer()
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	spyRun, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		calls++
		a := make([]any, len(args))
		for i, v := range args {
			a[i] = v
		}
		v, err := replay.Call("run", a...)
		if err != nil {
			t.Errorf("replay.run: %v", err)
		}
		return v
	})
	if err != nil {
		t.Fatal(err)
	}
	defer spyRun.Release()
	spy, err := jsObject(map[string]any{"run": spyRun})
	if err != nil {
		t.Fatal(err)
	}

	r := rand.New(rand.NewPCG(9, 4))
	const n = 1000
	x := randn(r, n, 1)
	src, out := upload(t, k, "x", x), output(t, k, "out", n)
	best := output(t, k, "best", 1)
	staging, err := k.Dev.CreateBuffer("read-back", 4, gpu.UsageMapRead|gpu.UsageCopyDst)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []*gpu.Buffer{src.Buf, out.Buf, best.Buf, staging} {
		defer b.Destroy()
	}
	for _, c := range []struct {
		name     string
		replayer safejs.Value
		calls    int
	}{
		{"from Go", safejs.Undefined(), 0},
		{"replayed", spy, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := k.SetReplayer(c.replayer); err != nil {
				t.Fatal(err)
			}
			calls = 0
			got := run(t, k, out, n, must(t)(k.Copy(out, src, n)))
			closeTo(t, "copy", got, x, 0, 0)
			p := &Plan{}
			p.Add(must(t)(k.Argmax(best, src, n)))
			id, err := k.RunRead(p, best, staging)
			if err != nil {
				t.Fatal(err)
			}
			if want := model.Argmax(x); int(id) != want {
				t.Errorf("RunRead: argmax %d, want %d", id, want)
			}
			if calls != c.calls {
				t.Errorf("replay.run called %d times for Run and RunRead, want %d", calls, c.calls)
			}
		})
	}

	notReplayer, _ := jsObject(map[string]any{"go": "away"})
	if err := k.SetReplayer(notReplayer); err == nil || !strings.Contains(err.Error(), "run(device, plan, readback)") {
		t.Errorf("SetReplayer({go}) = %v, want a refusal naming run", err)
	}
}
