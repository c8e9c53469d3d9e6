// Makes Node look like the test page of internal/cmd/wasmexec to a Go js/wasm program, so
// that the engine's test binary runs under Dawn for Node as it does in headless Chromium:
//  - the module root (the nearest folder above the current one with a go.mod) is served on
//    127.0.0.1 under /repo/, and fetch() of a path ("/repo/…") goes there: Node's fetch has
//    no page to resolve a path against;
//  - so a test imports the engine's JS modules from there as it does in the page
//    (web/cogvlm-replay.js: wasm/kernels/kernelstest); nothing is loaded as a global.
// runwasm.cjs requires it; bench/device.sh loads it with `node --require` beside the packed
// runner.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

function moduleRoot(dir) {
  for (;;) {
    if (fs.existsSync(path.join(dir, 'go.mod'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}
const root = moduleRoot(process.cwd());

const types = { '.json': 'application/json', '.bin': 'application/octet-stream', '.png': 'image/png' };
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://host');
  const rel = decodeURIComponent(url.pathname).replace(/^\/repo\//, '');
  const file = path.resolve(root, rel);
  if (!url.pathname.startsWith('/repo/') || !file.startsWith(root + path.sep)) {
    res.writeHead(404).end();
    return;
  }
  fs.readFile(file, (err, data) => {
    if (err) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream' }).end(data);
  });
});
server.unref(); // the Go program's exit ends the process
const ready = new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`)));
const nodeFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  if (typeof input === 'string' && input.startsWith('/')) input = (await ready) + input;
  return nodeFetch(input, init);
};
