//go:build js && wasm

package kernels

import "github.com/cogvlm-web/cogvlm-web/model/format"

// Weight is one tensor of a package on the GPU: bindings into its shard's buffer.
type Weight struct {
	format.TensorEntry
	Data, Scales Tensor // Scales only for q4/q8
}
