//go:build js && wasm

package kernels

import (
	"errors"
	"testing"
)

// TestDebugModeFindsTheOp: a wrong result is pinned to its dispatch.
func TestDebugModeFindsTheOp(t *testing.T) {
	k := kernels(t)
	a, b := upload(t, k, "a", []float32{1, 2, 3, 4}), upload(t, k, "b", []float32{10, 20, 30, 40})
	out := output(t, k, "out", 4)
	good := must(t)(k.Add(out, a, b, 4))
	bad := must(t)(k.Add(out, a, b, 4))
	bad.twin = twinAdd(out, a, a, 4) // claims out = a + a: the GPU disagrees
	err := k.RunDebug(&Plan{Steps: []Step{good, bad}}, 1e-6)
	var de *DebugError
	if !errors.As(err, &de) || de.Index != 1 || de.Label != "add" || de.Got != 11 || de.Want != 2 {
		t.Errorf("RunDebug error = %v, want dispatch 1 (add) element 0: 11 vs 2", err)
	}
}
