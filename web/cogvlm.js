// CogVLM in a browser tab: the JS API of DESIGN.md, usable by any page that embeds the model.
//
//   import { CogVLM } from '/cogvlm.js';
//   const model = await CogVLM.load('/models/demo/manifest.json', { onProgress });
//   const out = await model.generate({ image, query, history, template, maxNewTokens,
//                                      temperature, topP, topK, seed, onToken, signal });
//   // out: {tokenIds, text, inputIds, stats: {visionMs, prefillMs, prefillTokens, reusedTokens,
//   //       firstTokenMs, decodeMs, decodeTokens}, boxes: [{x0, y0, x1, y1, label}],
//   //       image: {width, height}}
//   //       (boxes: the grounding boxes of the answer, in pixels of the image as given,
//   //       whose size is image; null without an image)
//   await model.dispose();
//   const url = await CogVLM.convert({ repo: 'THUDM/cogvlm-chat-hf', onProgress, signal });
//   // converts the hub's checkpoint in the page, kept in browser storage; CogVLM.load(url)
//
// Options left out take the engine's defaults (model.DefaultSampling, listed in
// model.info.defaults): greedy decoding, as THUDM's demos, up to 256 new tokens or the
// context's end, whichever comes first (a maxNewTokens given is a demand). A template
// left out is vicuna (Vicuna's chat format) for a question without an image and the
// model's own (model.info.template) for one with an image.
//
// Each loaded model runs the Go/WASM engine in a dedicated Web Worker (worker.js) that
// downloads, verifies and stores the package (loader.js, store.js) and hands the engine
// the verified bytes; the engine (wasm/main.go documents the object the worker talks to)
// plans GPU memory, uploads and answers. onProgress receives one shape,
// {phase, loadedBytes, totalBytes, text}, with phase probe → manifest → download → upload
// → ready. Failures reject with a CogVLMError whose `code` is one of ErrorCodes.
//
// A follow-up costs only its new tokens: the engine keeps the conversation's keys and values
// (its KV cache) and prefills only the prompt's tokens after the longest common prefix of
// token ids with what the cache holds (the previous prompt and its answer), with the same
// answer as a fresh model's. stats.reusedTokens counts the prompt's tokens taken from the
// cache, stats.prefillTokens those run now (the prompt has both), stats.firstTokenMs the
// wait from the request to the first token. Another image (by content) or template reuses
// nothing; model.resetCache() forgets the conversation (a new chat).
//
// Beyond the contract: load also takes a package folder from disk (a FileList or File[]
// from <input webkitdirectory>, or a FileSystemDirectoryHandle) and a `signal`; generate
// takes `repetitionPenalty`; its result also has `stopReason` and `image` (the size of the
// image as given); `model.info` describes the loaded model; CogVLM.probe() checks WebGPU
// without downloading anything; model.resetCache().

import { CogVLMError } from './errors.js';
import { answerBoxes } from './grounding.js';
import { WorkerClient } from './protocol.js';

export { CogVLMError, ErrorCodes } from './errors.js';
export { deleteStoredPackage, storedPackages } from './store.js';

/** noWebGPUMessage says which browsers have WebGPU, for the no-webgpu error. */
export function noWebGPUMessage(reason) {
  if (!globalThis.isSecureContext) {
    return 'WebGPU needs a secure page: open the app from https:// or from localhost (127.0.0.1).';
  }
  return `This browser has no WebGPU${reason ? ` (${reason})` : ''}. Use Chrome or Edge 113 or newer on Windows, macOS or ChromeOS (121+ on Android), Safari 26+, or Firefox 141+ on Windows. On Linux, Chrome needs chrome://flags/#enable-unsafe-webgpu and Vulkan; check chrome://gpu if it is on but fails.`;
}

/** folderOf accepts a FileList, an array of Files or a directory handle. */
function folderOf(source) {
  if (globalThis.FileSystemDirectoryHandle && source instanceof FileSystemDirectoryHandle) return source;
  if (globalThis.FileList && source instanceof FileList) return Array.from(source);
  if (Array.isArray(source) && source.every((f) => f instanceof File)) return source;
  throw new CogVLMError('bad-input', 'CogVLM.load: want a manifest URL, a FileList or File[] of a package folder, or a directory handle');
}

export class CogVLM {
  #client;

  /**
   * info describes the loaded model: {name, manifestURL, source ('network', 'storage' or
   * 'folder'), stored, totalBytes, encodings, nameOrPath (config.json's _name_or_path),
   * notes, maxPositions, vocabSize, imageSize, maxImageSide (larger images are downscaled
   * to it before the engine decodes them), template (config.json's template_version),
   * defaults (what a generate option left out means: {maxNewTokens, temperature, topP, topK,
   * repetitionPenalty, seed}), adapter, precision ('f16' or 'f32': the q4 kernels' path)}.
   */
  info;

  constructor(client, info) {
    this.#client = client;
    this.info = info;
  }

  /**
   * probe reports the browser's WebGPU adapter without downloading anything, or rejects
   * with code no-webgpu. The loader checks the package against the limits again.
   */
  static async probe() {
    if (!navigator.gpu) throw new CogVLMError('no-webgpu', noWebGPUMessage());
    let adapter = null;
    try {
      adapter = await navigator.gpu.requestAdapter();
    } catch (err) {
      throw new CogVLMError('no-webgpu', noWebGPUMessage(err.message));
    }
    if (!adapter) throw new CogVLMError('no-webgpu', noWebGPUMessage('no GPU adapter is available'));
    const info = adapter.info ?? {};
    return {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      fallback: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
      features: [...adapter.features].sort(),
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    };
  }

  /**
   * load starts a worker and loads the package at manifestURL (or a folder from disk):
   * WebGPU and the adapter's limits are checked before any shard is downloaded.
   * precision 'auto' (the default) takes the f16 q4 kernels on a GPU with shader-f16 and
   * the f32 ones elsewhere, CPU adapters (lavapipe, SwiftShader) included; 'f16' takes
   * them wherever the device has shader-f16 (bad-input where it has not), 'f32' never
   * (the summary's `precision` says which ran).
   */
  static async load(source, { onProgress, signal, precision } = {}) {
    if (!navigator.gpu) throw new CogVLMError('no-webgpu', noWebGPUMessage());
    const content = typeof source === 'string' || source instanceof URL ? { manifestURL: new URL(source, location.href).href } : { folder: folderOf(source) };
    if (precision !== undefined) content.precision = precision;
    if (signal?.aborted) throw new CogVLMError('aborted', 'loading aborted');
    const url = new URL('./worker.js', import.meta.url);
    const client = new WorkerClient(url, {
      name: 'cogvlm-engine',
      // A worker that dies takes the model with it: like a lost GPU device, only a new
      // load (a reload of the page) helps, hence the same code.
      lost: (message) => new CogVLMError('device-lost', `the engine's worker stopped: ${message ?? `${url} could not be started`}`),
      ended: () => new CogVLMError('aborted', 'the model was disposed'),
    });
    try {
      const info = await client.request('load', content, {
        signal,
        onEvent: (kind, progress) => {
          if (kind === 'progress') onProgress?.(progress);
        },
      });
      return new CogVLM(client, info);
    } catch (err) {
      client.terminate();
      throw err;
    }
  }

  /**
   * convert converts a published checkpoint in this browser and keeps the package in
   * browser storage: {hub ('https://huggingface.co'), repo ('owner/name'), tokenizerRepo
   * ('lmsys/vicuna-7b-v1.5': its tokenizer.model, unless the repository has a tokenizer),
   * name (the stored model's name; the repository's name), onProgress({phase, loadedBytes,
   * totalBytes, text, networkBytes, bytesPerSecond, etaSeconds}), signal (cancels and frees
   * what was written)}. Only the hub's hosts are contacted, for the checkpoint's bytes.
   * Resolves to the stored package's manifest URL, which load takes (offline too); a
   * conversion interrupted by a closed tab resumes where it stopped. See convert.js.
   */
  static async convert(options = {}) {
    const { convertCheckpoint } = await import('./convert.js');
    return (await convertCheckpoint(options)).manifestURL;
  }

  /**
   * memory reports the engine's WebAssembly heap: {wasmMemoryBytes}, its size now, which is
   * also its peak (a WebAssembly.Memory never shrinks). Weight bytes never enter it.
   */
  memory() {
    return this.#client.request('memory', {});
  }

  /**
   * generate answers a question, about `image` if given (Blob, File, ImageBitmap or null).
   * onToken(id, text) receives each token id and the text it completes (possibly empty: a
   * character can span tokens), as the engine's onToken does; `signal` stops
   * it (the promise then rejects with code aborted; the streamed text is what there is).
   */
  async generate({ image = null, onToken, signal, ...options } = {}) {
    // The options go to the engine, which checks them (query, history, the sampling
    // settings), fills in its defaults and refuses a second answer while one runs.
    const out = await this.#client.request(
      'generate',
      { image, ...options },
      {
        signal,
        onEvent: (kind, token) => {
          if (kind === 'token') onToken?.(token.id, token.text);
        },
      },
    );
    // Boxes of a grounding answer ([[x0,y0,x1,y1]] in thousandths), in the pixels of the
    // image as given, whose size the engine read as it decoded it: web/grounding.js.
    out.boxes = answerBoxes(out.text, out.image);
    return out;
  }

  /**
   * resetCache forgets the conversation the engine keeps (its KV cache): the next question
   * prefills its whole prompt. For a new chat; answers are the same either way.
   */
  resetCache() {
    return this.#client.request('resetCache', {});
  }

  /** dispose frees the GPU memory and stops the worker. */
  async dispose() {
    try {
      await this.#client.request('dispose', {});
    } catch {
      // the worker may already be gone (device lost, crashed): terminating is what is left
    } finally {
      this.#client.terminate();
    }
  }
}
