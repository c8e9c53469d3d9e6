//go:build js && wasm && cogvlm_release

package kernels

// debugTwins is false in the release build (-tags cogvlm_release): no step carries a CPU
// twin, and RunDebug refuses to run. See debugtwins.go.
const debugTwins = false
