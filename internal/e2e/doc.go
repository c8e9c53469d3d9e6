// Package e2e holds the end-to-end tests of the web app: headless Chromium (WebGPU on
// SwiftShader) drives the real page (web/) served by the real server binary (server/),
// loading the demo package and comparing the streamed answers with the CPU reference
// (`cogvlm generate`). The tests build everything they run — the engine (cogvlm.wasm), the
// server, the CLI and the package — into a temporary folder, so they never test a stale
// build. Screenshots of the main states go to test-output/screenshots/ at the repo root.
//
// Nothing but the tests lives here.
package e2e
