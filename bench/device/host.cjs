// Loaded with `node --require` before Go's wasm runner (bench/device.sh), so that the
// engine's test binary runs under Dawn for Node as it does in the test page:
//  - replay.js sets globalThis.cogvlmReplay (the engine's one-call-per-step encoder);
//  - the repository (the current directory) is served on 127.0.0.1 under /repo/, as
//    internal/cmd/wasmexec serves it to Chromium, and fetch() of a path ("/repo/…")
//    goes there: Node's fetch has no page to resolve a path against.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

require(path.join(__dirname, '..', '..', 'wasm', 'engine', 'replay.js'));

const root = process.cwd();
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
