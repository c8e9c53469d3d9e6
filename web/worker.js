// The engine's Web Worker (a module worker). The Go/WASM engine runs here, off the page's
// thread, so the page stays responsive while gigabytes load and tokens decode.
//
// Protocol (STYLE.md, after WebLLM): the page sends {kind, id, content}; every request is
// answered once, by {kind: 'return', id, content: result} or {kind: 'throw', id, content:
// {code, message}}. While a request runs it may send events with the same id: 'progress'
// (load) and 'token' (generate). The handlers are the one table below.

import './wasm_exec.js'; // defines globalThis.Go
import './cogvlm-replay.js'; // globalThis.cogvlmReplay: a decode step in one Go→JS call (wasm/kernels/replay.js)
import { CogVLMError, asCogVLMError, toWire } from './errors.js';
import { imageBytes } from './image.js';
import { FolderPackage, RemotePackage, loadPackage } from './loader.js';

const networkFetch = globalThis.fetch.bind(globalThis);

let engineStarting = null;
let wasmMemory = null; // the Go program's WebAssembly.Memory: it only grows, so its size is the peak
let engineStopped = false;
let loaded = false;

/** engine starts the Go program once and resolves to its globalThis.cogvlmEngine. */
function engine() {
  engineStarting ??= (async () => {
    const ready = new Promise((resolve) => {
      globalThis.cogvlmEngineReady = resolve;
    });
    const go = new Go();
    const url = new URL('cogvlm.wasm', import.meta.url);
    let instance;
    try {
      ({ instance } = await WebAssembly.instantiateStreaming(networkFetch(url), go.importObject));
    } catch (err) {
      engineStarting = null; // a later request tries again
      throw new CogVLMError('network', `cannot start the engine from ${url}: ${err.message}`);
    }
    wasmMemory = instance.exports.mem ?? null;
    // The Go program only returns by crashing (it waits for calls forever): from then on
    // every call fails, and the page must reload.
    go.run(instance).then(() => {
      engineStopped = true;
    });
    return ready;
  })();
  return engineStarting.then((e) => {
    if (engineStopped) throw new CogVLMError('device-lost', 'the engine stopped after an internal error (see the console); reload the page');
    return e;
  });
}

/** running maps a request id to the AbortController that abort() fires. */
const running = new Map();

const handlers = {
  /** load({manifestURL} | {folder}, precision?) → the model's summary; emits 'progress'. */
  async load({ manifestURL, folder, precision }, { emit, signal }) {
    emit('progress', { phase: 'probe', loadedBytes: 0, totalBytes: 0, text: 'Starting the engine…' });
    const e = await engine();
    loaded = false;
    let pkg;
    if (folder) pkg = new FolderPackage(folder);
    else if (typeof manifestURL === 'string' && manifestURL) pkg = new RemotePackage(manifestURL);
    else throw new CogVLMError('bad-input', 'load: give a manifest URL or a package folder');
    const result = await loadPackage(e, pkg, {
      onProgress: (p) => emit('progress', p),
      signal,
      precision,
    });
    loaded = true;
    return result;
  },

  /** generate(options) → {tokenIds, text, inputIds, stopReason, stats}; emits 'token'. */
  async generate(o, { emit, signal }) {
    const e = await engine();
    if (!loaded) throw new CogVLMError('bad-input', 'generate: no model is loaded');
    const image = await imageBytes(o.image);
    if (signal.aborted) throw new CogVLMError('aborted', 'generation aborted');
    const stop = () => e.abort();
    signal.addEventListener('abort', stop);
    try {
      return await e.generate({
        imageBytes: image,
        query: o.query,
        history: o.history,
        template: o.template,
        maxNewTokens: o.maxNewTokens,
        temperature: o.temperature,
        topP: o.topP,
        topK: o.topK,
        repetitionPenalty: o.repetitionPenalty,
        seed: o.seed,
        onToken: (id, text) => emit('token', { id, text }),
      });
    } finally {
      signal.removeEventListener('abort', stop);
    }
  },

  /** resetCache() forgets the conversation's KV cache (a new chat). */
  async resetCache() {
    if (loaded) (await engine()).resetCache();
    return null;
  },

  /** memory() → {wasmMemoryBytes}: the engine's WebAssembly heap (its peak: it never shrinks). */
  memory() {
    return { wasmMemoryBytes: wasmMemory?.buffer.byteLength ?? 0 };
  },

  /** abort({id}) stops the running request id (a load or a generate). */
  abort({ id }) {
    running.get(id)?.abort();
    return null;
  },

  /** dispose frees the model's GPU memory. */
  async dispose() {
    if (engineStarting && !engineStopped) await (await engine()).dispose();
    loaded = false;
    return null;
  },
};

self.onmessage = async ({ data }) => {
  const { kind, id, content } = data ?? {};
  const post = (k, c) => self.postMessage({ kind: k, id, content: c });
  const controller = new AbortController();
  running.set(id, controller);
  try {
    const handler = Object.hasOwn(handlers, kind) ? handlers[kind] : null;
    if (!handler) throw new CogVLMError('bad-input', `worker: unknown request "${kind}" (known: ${Object.keys(handlers).join(', ')})`);
    post('return', await handler(content ?? {}, { emit: post, signal: controller.signal }));
  } catch (err) {
    post('throw', toWire(asCogVLMError(err)));
  } finally {
    running.delete(id);
  }
};
