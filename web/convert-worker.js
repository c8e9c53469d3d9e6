// A converter's Web Worker (module worker): one instance of web/convert.wasm (model/pkg's
// Stream, wasm/convert) reading the checkpoint from the hub with Range requests and keeping
// what it writes in browser storage. convert.js runs several of them, each writing whole
// shards, so that conversion uses several cores (Go's WebAssembly is single-threaded).
//
// Protocol: protocol.js's ({kind, id, content} → 'return' or 'throw', events with the same id).
//   open({hub, repo, tokenizerRepo, manifestURL, quant, shardBytes, chunkBytes})
//        → {plan (manifest.json without hashes, text), shardInputBytes, inputBytes, files}
//   tokenizer() → its entry, stored        shard({index}) → its entry, stored;
//        both emit 'bytes' {n} (network bytes) and shard also 'input' {done}
//   manifest({tokenizer, shards}) → manifest.json (ArrayBuffer)
//   memory() → {wasmMemoryBytes} (the heap's size, which is its peak: it never shrinks)

import './wasm_exec.js'; // defines globalThis.Go
import { CogVLMError, asCogVLMError } from './errors.js';
import { HubFiles } from './hub.js';
import { PackageStore } from './store.js';
import { serve } from './protocol.js';

/** The largest small file read whole: config.json, the index, a tokenizer (model/pkg MaxTokenizerBytes). */
const maxSmallFile = 64 << 20;

let wasmMemory = null;
let converter = null; // globalThis.cogvlmConvert once started
let files = null; // HubFiles of the repository
let store = null;
let emitBytes = () => {};
let lastReadError = null; // the CogVLMError behind Go's wrapped message, for its code

async function start() {
  if (converter) return converter;
  const ready = new Promise((resolve) => {
    globalThis.cogvlmConvertReady = resolve;
  });
  const go = new Go();
  const url = new URL('convert.wasm', import.meta.url);
  let instance;
  try {
    ({ instance } = await WebAssembly.instantiateStreaming(fetch(url), go.importObject));
  } catch (err) {
    throw new CogVLMError('network', `cannot start the converter from ${url}: ${err.message}`);
  }
  wasmMemory = instance.exports.mem ?? null;
  go.run(instance);
  converter = await ready;
  return converter;
}

/** remember keeps a read's CogVLMError so that the one Go reports keeps its code. */
async function remember(read) {
  try {
    return await read();
  } catch (err) {
    lastReadError = asCogVLMError(err);
    throw lastReadError;
  }
}

/** fromGo gives an error from the converter the code of the read behind it, if any. */
function fromGo(err) {
  // A read that failed is the cause, whatever Go's wrapping made of it.
  const code = lastReadError ? lastReadError.code : err?.code;
  lastReadError = null;
  return new CogVLMError(code ?? 'internal', err?.message ?? String(err));
}

/** collect gathers written pieces into a Blob, which the browser may keep out of this heap. */
function collector() {
  const parts = [];
  return { write: (u8) => parts.push(u8), blob: () => new Blob(parts) };
}

const handlers = {
  async open({ hub, repo, tokenizerRepo, manifestURL, quant, shardBytes, chunkBytes }) {
    const c = await start();
    files = new HubFiles(hub, repo, { onBytes: (n) => emitBytes(n) });
    const tokenizerFiles = tokenizerRepo && tokenizerRepo !== repo ? new HubFiles(hub, tokenizerRepo, { onBytes: (n) => emitBytes(n) }) : null;
    store = await PackageStore.open(manifestURL);
    if (!store) throw new CogVLMError('limits', 'this browser has no Cache Storage to keep a converted model in');
    let plan;
    try {
      plan = await c.open({
        name: `${new URL(hub).host}/${repo}`,
        quant: quant ?? 'q4',
        shardBytes: shardBytes ?? 0,
        chunkBytes: chunkBytes ?? 0,
        readFile: (file) =>
          remember(async () => {
            const bytes = await files.readFile(file, maxSmallFile);
            // The published CogVLM repositories have no tokenizer: their README names Vicuna's.
            if (bytes === null && file === 'tokenizer.model' && tokenizerFiles) return tokenizerFiles.readFile(file, maxSmallFile);
            return bytes;
          }),
        size: (file) => remember(() => files.size(file)),
        readRange: (file, offset, length) => remember(() => files.readRange(file, offset, length)),
      });
    } catch (err) {
      throw fromGo(err);
    }
    return { ...plan, files: Object.fromEntries(files.seen) };
  },

  async tokenizer(_, { emit }) {
    emitBytes = (n) => emit('bytes', { n });
    const { entry, bytes } = await converter.tokenizer();
    await store.write(entry, bytes);
    return entry;
  },

  async shard({ index }, { emit }) {
    emitBytes = (n) => emit('bytes', { n });
    const out = collector();
    let entry;
    try {
      entry = await converter.shard(index, out.write, (done) => emit('input', { done }));
    } catch (err) {
      throw fromGo(err);
    }
    await store.write(entry, out.blob());
    return entry;
  },

  async manifest({ tokenizer, shards }) {
    try {
      return (await converter.manifest(tokenizer, shards)).buffer;
    } catch (err) {
      throw fromGo(err);
    }
  },

  memory() {
    return { wasmMemoryBytes: wasmMemory?.buffer.byteLength ?? 0 };
  },
};

serve(handlers, 'converter worker');
