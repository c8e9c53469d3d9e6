// The engine's Web Worker (a module worker). The Go/WASM engine runs here, off the page's
// thread, so the page stays responsive while gigabytes load and tokens decode.
//
// Protocol: protocol.js's, whose events here are 'progress' (load) and 'token' (generate).
// The handlers are the one table below.

import './wasm_exec.js'; // defines globalThis.Go
import * as replay from './cogvlm-replay.js'; // the kernels' JS half: a decode step in one Go→JS call, handed to the engine at load
import { CogVLMError } from './errors.js';
import { imageFile, reencode } from './image.js';
import { FolderPackage, RemotePackage, loadPackage } from './loader.js';
import { serve } from './protocol.js';

const networkFetch = globalThis.fetch.bind(globalThis);

let engineStarting = null; // a promise of the engine object (wasm/main.go documents it)
let wasmMemory = null; // the Go program's WebAssembly.Memory: it only grows, so its size is the peak
let engineStopped = false;
let loaded = null; // the engine's load summary, while a model is loaded

/**
 * engine starts the Go program once and resolves to the engine object it hands over
 * (wasm/main.go documents its methods). The hand-over is the one name the two share:
 * the program calls globalThis.cogvlmEngineReady(engine) as it starts and deletes it.
 */
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
    loaded = null;
    let pkg;
    if (folder) pkg = new FolderPackage(folder);
    else if (typeof manifestURL === 'string' && manifestURL) pkg = new RemotePackage(manifestURL);
    else throw new CogVLMError('bad-input', 'load: give a manifest URL or a package folder');
    const result = await loadPackage(e, pkg, {
      onProgress: (p) => emit('progress', p),
      signal,
      precision,
      replay,
    });
    loaded = result;
    return result;
  },

  /**
   * generate(options) → {tokenIds, text, inputIds, stopReason, image, stats}; emits 'token'.
   * The options go to the engine as they are (it reads and checks them, and fills in the
   * defaults), with the image turned into the bytes of a file the engine decodes (image.js):
   * the file as given, or, when the engine refuses it as image-too-large (from its header)
   * or it is no file Go reads, a downscaled PNG. image is {width, height} of the image as
   * given (the pixels grounding boxes are in), null without one.
   */
  async generate({ image, ...options }, { emit, signal }) {
    const e = await engine();
    if (!loaded) throw new CogVLMError('bad-input', 'generate: no model is loaded');
    const maxSide = loaded.maxImageSide;
    const ask = async (file) => {
      if (signal.aborted) throw new CogVLMError('aborted', 'generation aborted');
      const stop = () => e.abort();
      signal.addEventListener('abort', stop);
      try {
        return await e.generate({ ...options, imageBytes: file?.bytes ?? null, onToken: (id, text) => emit('token', { id, text }) });
      } finally {
        signal.removeEventListener('abort', stop);
      }
    };
    let file = await imageFile(image, maxSide);
    let out;
    try {
      out = await ask(file);
    } catch (err) {
      if (err?.code !== 'image-too-large' || file?.width !== null) throw err;
      file = await reencode(image, maxSide); // nothing ran: the engine read only the header
      out = await ask(file);
    }
    if (file?.width) out.image = { width: file.width, height: file.height }; // before downscaling
    else if (out.image) out.image = { width: out.image.width, height: out.image.height }; // the engine gives its keys sorted; the API lists width first, as above
    return out;
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
    loaded = null;
    return null;
  },
};

serve(handlers, 'worker', running);
