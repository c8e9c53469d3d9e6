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

// TestResultKeysSorted: a map result, nested ones too, reaches JS with its keys in sorted
// order every time, not in Go's random map order.
func TestResultKeysSorted(t *testing.T) {
	keys := func(v safejs.Value) string {
		object, _ := safejs.Global().Get("Object")
		k, _ := object.Call("keys", v)
		s, _ := k.Call("join", ",")
		str, _ := s.String()
		return str
	}
	for range 20 {
		v, err := call(t, func([]safejs.Value) (any, error) {
			return map[string]any{"width": 40, "height": 30, "stats": map[string]any{"z": 1, "a": 2, "m": 3}, "list": []any{map[string]any{"y": 1, "b": 2}}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		stats, _ := v.Get("stats")
		list, _ := v.Get("list")
		first, _ := list.Index(0)
		if got := keys(v) + "|" + keys(stats) + "|" + keys(first); got != "height,list,stats,width|a,m,z|b,y" {
			t.Fatalf("keys %s, want height,list,stats,width|a,m,z|b,y", got)
		}
		if w, _ := v.Get("width"); mustInt(w) != 40 {
			t.Fatalf("width %v", w)
		}
	}
}

func mustInt(v safejs.Value) int { n, _ := v.Int(); return n }
