//go:build js && wasm

// Package gpu is a thin, typed WebGPU layer over safejs for the engine.
//
// It owns the adapter and device (optional features and the adapter's maximum limits),
// buffers, shader modules, compute pipelines, bind groups, command encoding and read-back.
// JS exceptions, rejected promises, shader compilation messages, validation errors,
// uncaptured errors and a lost device all come back as Go errors; nothing here panics.
//
// Weight bytes never pass through the Go heap: WriteBufferJS takes a JS ArrayBuffer or
// TypedArray and hands it to queue.writeBuffer unchanged.
//
// Await blocks the calling goroutine until a JS promise settles. The Go runtime yields to
// the JS event loop meanwhile, so it must not be called from inside a JS callback (a
// safejs.FuncOf handler): start a goroutine there instead.
package gpu
