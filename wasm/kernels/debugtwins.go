//go:build js && wasm && !cogvlm_release

package kernels

// debugTwins says whether the Kernels methods attach their CPU twins to the steps they
// record, for RunDebug. Only tests and development builds run the debug mode; the page's
// cogvlm.wasm is built with -tags cogvlm_release (debugtwins_release.go), where every
// `if debugTwins` block is dead code and the twins, with the CPU functions only they call,
// are left out of the binary (bench/README.md, "Size of web/cogvlm.wasm").
const debugTwins = true
