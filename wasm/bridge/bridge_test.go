//go:build js && wasm

package bridge

import (
	"errors"
	"strings"
	"testing"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

func call(t *testing.T, fn Func, args ...any) (safejs.Value, error) {
	t.Helper()
	obj, _ := safejs.ValueOf(map[string]any{})
	if err := Export(obj, "f", fn); err != nil {
		t.Fatal(err)
	}
	p, err := obj.Call("f", args...)
	if err != nil {
		t.Fatal(err)
	}
	return gpu.Await(p)
}

func code(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("promise resolved, want a rejection")
	}
	return err.Error()
}

func TestExport(t *testing.T) {
	v, err := call(t, func(args []safejs.Value) (any, error) {
		n, _ := args[0].Int()
		return n * 2, nil
	}, 21)
	if n, _ := v.Int(); err != nil || n != 42 {
		t.Errorf("resolved %v, %v; want 42", n, err)
	}
}

func TestPanicBecomesRejection(t *testing.T) {
	_, err := call(t, func([]safejs.Value) (any, error) {
		var m map[string]int
		m["boom"] = 1 // a Go panic must not kill the instance
		return nil, nil
	})
	if msg := code(t, err); !strings.Contains(msg, "internal error") {
		t.Errorf("rejection = %q", msg)
	}
	// The instance still works after the panic.
	if _, err := call(t, func([]safejs.Value) (any, error) { return "ok", nil }); err != nil {
		t.Errorf("call after a panic: %v", err)
	}
}

func TestCodedErrorCarriesCode(t *testing.T) {
	obj, _ := safejs.ValueOf(map[string]any{})
	Export(obj, "f", func([]safejs.Value) (any, error) {
		return nil, &CodedError{Code: "bad-input", Err: errors.New("image: unknown format")}
	})
	p, _ := obj.Call("f")
	// Read the rejection reason itself to see its code property.
	reason := make(chan safejs.Value, 1)
	catch, _ := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any { reason <- args[0]; return nil })
	defer catch.Release()
	p.Call("catch", catch)
	r := <-reason
	c, _ := r.Get("code")
	cs, _ := c.String()
	m, _ := r.Get("message")
	ms, _ := m.String()
	if cs != "bad-input" || ms != "image: unknown format" {
		t.Errorf("rejection code %q message %q", cs, ms)
	}
}
