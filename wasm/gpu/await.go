//go:build js && wasm

package gpu

import (
	"errors"
	"fmt"

	"github.com/hack-pad/safejs"
)

// Await waits for a JS promise (or any thenable) and returns its value, or its rejection
// reason as an error. A value that is not a thenable is returned as it is.
func Await(p safejs.Value) (safejs.Value, error) {
	if then, err := p.Get("then"); err != nil || then.Type() != safejs.TypeFunction {
		return p, nil
	}
	type result struct {
		v   safejs.Value
		err error
	}
	done := make(chan result, 1)
	onValue, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		v := safejs.Undefined()
		if len(args) > 0 {
			v = args[0]
		}
		done <- result{v: v}
		return nil
	})
	if err != nil {
		return safejs.Undefined(), err
	}
	defer onValue.Release()
	onError, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		reason := safejs.Undefined()
		if len(args) > 0 {
			reason = args[0]
		}
		done <- result{err: JSError(reason)}
		return nil
	})
	if err != nil {
		return safejs.Undefined(), err
	}
	defer onError.Release()
	if _, err := p.Call("then", onValue, onError); err != nil {
		return safejs.Undefined(), err
	}
	r := <-done
	return r.v, r.err
}

// JSError turns a JS error-like value (Error, GPUError, GPUPipelineError, DOMException, a
// string) into a Go error carrying its name and message.
func JSError(v safejs.Value) error {
	if v.Type() == safejs.TypeString {
		s, _ := v.String()
		return errors.New(s)
	}
	if v.Type() != safejs.TypeObject {
		return fmt.Errorf("JS error: %s", describe(v))
	}
	name := stringProp(v, "name")
	msg := stringProp(v, "message")
	if reason := stringProp(v, "reason"); reason != "" && name == "GPUPipelineError" {
		name += " (" + reason + ")"
	}
	switch {
	case name != "" && msg != "":
		return fmt.Errorf("%s: %s", name, msg)
	case msg != "":
		return errors.New(msg)
	case name != "":
		return errors.New(name)
	}
	return fmt.Errorf("JS error: %s", describe(v))
}

func stringProp(v safejs.Value, name string) string {
	p, err := v.Get(name)
	if err != nil || p.Type() != safejs.TypeString {
		return ""
	}
	s, _ := p.String()
	return s
}

func describe(v safejs.Value) string {
	s, err := safejs.Global().Get("String")
	if err != nil {
		return v.Type().String()
	}
	r, err := s.Invoke(v)
	if err != nil {
		return v.Type().String()
	}
	str, _ := r.String()
	return str
}
