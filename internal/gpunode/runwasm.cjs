// Runs a Go js/wasm program — usually a test binary — under Node with WebGPU from Dawn (the
// npm package `webgpu`, installed beside this file by ./build.sh) as navigator.gpu, in the
// test page's surroundings (host.cjs), then hands over to Go's own wasm_exec_node.js (argv,
// env, exit code). The `go test -exec` runner of ./build.sh test-lavapipe:
//
//	VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.json \
//	  GOOS=js GOARCH=wasm go test -exec "$PWD/.bin/gpu-node/go_js_wasm_webgpu_exec" ./wasm/...
//
// Dawn takes the first Vulkan driver it finds: VK_ICD_FILENAMES picks it. DAWN_FLAGS passes
// Dawn options to create() (space-separated), e.g. `enable-dawn-features=...`.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

// Go's runner: next to this file when packed for a machine without Go, else from GOROOT.
const local = path.join(__dirname, 'wasm_exec_node.js');
const execNode = fs.existsSync(local) ? local : path.join(process.env.GOROOT ||
  execFileSync('go', ['env', 'GOROOT']).toString().trim(), 'lib', 'wasm', 'wasm_exec_node.js');

require('./host.cjs');
import(require.resolve('webgpu', { paths: [__dirname] })).then(({ create, globals }) => {
  Object.assign(globalThis, globals);
  // navigator keeps the instance referenced: Dawn aborts if it is collected.
  const gpu = create((process.env.DAWN_FLAGS || '').split(/\s+/).filter(Boolean));
  Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node' }, configurable: true });
  require(execNode);
}).catch((err) => {
  console.error('runwasm:', err);
  process.exit(1);
});
