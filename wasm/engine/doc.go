//go:build js && wasm

// Package engine runs CogVLM on WebGPU from the ops of wasm/kernels: the language model
// (Decoder, both experts, mirroring model/decoder.go), the vision tower and adapter
// (Vision), a Session that answers requests with them, loading a converted package onto
// the GPU (Package) and the memory plan that refuses a model the device cannot hold.
package engine
