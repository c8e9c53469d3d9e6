//go:build js && wasm

// Package bridge exposes Go functions to JavaScript as promise-returning functions. Every
// call runs in its own goroutine (so it may Await WebGPU promises) and a Go panic becomes a
// rejected promise carrying an Error with a `code`, never a crash of the WASM instance.
package bridge

import (
	"fmt"
	"maps"
	"runtime/debug"
	"slices"

	"github.com/hack-pad/safejs"
)

// Func is the Go side of an exported function: JS arguments in, a JS-convertible value out.
type Func func(args []safejs.Value) (any, error)

// CodedError is an error with one of the JS API's error codes (DESIGN.md): no-webgpu,
// limits, out-of-memory, device-lost, integrity, network, bad-input, context-length, aborted.
type CodedError struct {
	Code string
	Err  error
}

func (e *CodedError) Error() string { return e.Err.Error() }
func (e *CodedError) Unwrap() error { return e.Err }

// Export sets obj[name] to a JS function returning a Promise for fn's result.
func Export(obj safejs.Value, name string, fn Func) error {
	f, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		p, err := newPromise(func(resolve, reject func(any)) {
			go func() {
				defer func() {
					if r := recover(); r != nil {
						reject(jsError("internal", fmt.Sprintf("%s: internal error: %v\n%s", name, r, debug.Stack())))
					}
				}()
				v, err := fn(args)
				if err != nil {
					code := "internal"
					if ce, ok := err.(*CodedError); ok {
						code = ce.Code
					}
					reject(jsError(code, err.Error()))
					return
				}
				o, err := ordered(v)
				if err != nil {
					reject(jsError("internal", fmt.Sprintf("%s: result: %v", name, err)))
					return
				}
				resolve(o)
			}()
		})
		if err != nil {
			return nil
		}
		return p
	})
	if err != nil {
		return err
	}
	return obj.Set(name, f)
}

// ordered converts a result for JS as syscall/js's ValueOf does, except that a
// map[string]any (at any depth) becomes an object whose keys are set in sorted order:
// ValueOf sets them in Go's random map order, so the same result would print differently
// from call to call (JSON.stringify, Object.keys, a test comparing either).
func ordered(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		obj, err := safejs.Global().Get("Object")
		if err == nil {
			obj, err = obj.New()
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if err != nil {
				break
			}
			var e any
			if e, err = ordered(v[k]); err == nil {
				err = obj.Set(k, e)
			}
		}
		if err != nil {
			return nil, err
		}
		return obj, nil
	case []any:
		a := make([]any, len(v))
		for i, e := range v {
			var err error
			if a[i], err = ordered(e); err != nil {
				return nil, err
			}
		}
		return a, nil
	}
	return v, nil
}

func newPromise(run func(resolve, reject func(any))) (safejs.Value, error) {
	ctor, err := safejs.Global().Get("Promise")
	if err != nil {
		return safejs.Undefined(), err
	}
	var executor safejs.Func
	executor, err = safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		defer executor.Release()
		resolve, reject := args[0], args[1]
		run(func(v any) { resolve.Invoke(v) }, func(v any) { reject.Invoke(v) })
		return nil
	})
	if err != nil {
		return safejs.Undefined(), err
	}
	return ctor.New(executor)
}

// jsError builds a JS Error with a code property.
func jsError(code, msg string) any {
	ctor, err := safejs.Global().Get("Error")
	if err != nil {
		return msg
	}
	e, err := ctor.New(msg)
	if err != nil {
		return msg
	}
	e.Set("code", code)
	return e
}
