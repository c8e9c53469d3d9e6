//go:build js && wasm

package engine

import (
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
)

// TestDebugMode runs a whole image question on the q4 package in the debug mode: every
// dispatch of the vision, prefill and decode plans (every op: q4/q8/f32 matmuls, norms,
// attention, RoPE into the KV cache, GELU, copies, argmax) is checked against its CPU twin
// on the GPU's own inputs.
func TestDebugMode(t *testing.T) {
	s := testSession(t, "tiny-q4")
	s.K.DebugTolerance = 1e-3
	defer func() { s.K.DebugTolerance = 0 }()
	req := imageRequest(t)
	req.Sampling = model.Sampling{MaxNewTokens: 2}
	if _, err := s.Generate(req, nil); err != nil {
		t.Fatal(err)
	}
}
