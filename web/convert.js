// Converting a published checkpoint in the page: CogVLM.convert. Web Workers
// (convert-worker.js, each running web/convert.wasm — model/pkg's converter) read the
// checkpoint from the hub with HTTP Range requests, tensor by tensor in row chunks, and
// each writes whole shards into the same Cache Storage layout a downloaded package has
// (store.js). The package is byte for byte what `cogvlm convert` writes from the same
// checkpoint. CogVLM.load of the returned manifest URL then reads it like any stored
// package, offline.
//
// Phases (onProgress gets {phase, loadedBytes, totalBytes, text, ...}): plan (config, index,
// headers; the sizes, the quota and the GPU's limits are checked before any weight is read)
// → convert (loadedBytes: checkpoint bytes converted; rate and ETA) → manifest → ready.
//
// Resume: a record of the shards written (store.js's MANIFEST_URL?converting) survives
// a closed tab; converting the same repository to the same name again skips them, unless a
// file of the repository changed since. Cancel (the signal) frees everything written. A
// failure leaves no model: nothing is loadable until the manifest is committed last; the
// shards written stay for a retry, except when the repository changed (then all go).

import { CogVLMError, asCogVLMError } from './errors.js';
import { bytes, duration, rate } from './format.js';
import { defaultHub, defaultTokenizerRepo, repoProblem } from './hub.js';
import { CogVLM } from './cogvlm.js';
import { fileNameProblem } from './loader.js';
import { WorkerClient } from './protocol.js';
import { PackageStore, convertedManifestURL, deleteStoredPackage, estimate, quotaError, sha256Hex } from './store.js';

/** At most this many converter workers run at once (each holds a few chunks of memory). */
export const maxConvertWorkers = 4;

const recordFormat = 'cogvlm-convert-progress';

/** convertWorker starts one convert-worker.js. */
function convertWorker() {
  return new WorkerClient(new URL('./convert-worker.js', import.meta.url), {
    name: 'cogvlm-convert',
    lost: (message) => new CogVLMError('internal', `a converter worker stopped: ${message ?? 'convert-worker.js could not be started'}`),
    ended: () => new CogVLMError('aborted', 'conversion aborted'),
  });
}

/** ConvertProgress turns counts into {phase, loadedBytes, totalBytes, text, networkBytes, bytesPerSecond, etaSeconds}. */
class ConvertProgress {
  constructor(emit) {
    this.emit = emit ?? (() => {});
    this.totalBytes = 0;
    this.doneBytes = 0; // checkpoint bytes of finished shards
    this.shardBytes = new Map(); // shard → input bytes done of one running
    this.networkBytes = 0;
    this.samples = [];
    this.last = 0;
  }

  get loadedBytes() {
    let n = this.doneBytes;
    for (const v of this.shardBytes.values()) n += v;
    return n;
  }

  report(phase, text, throttle = false) {
    const now = performance.now();
    if (throttle && now - this.last < 100) return;
    this.last = now;
    const { bps, eta } = this.#rate(now);
    this.emit({ phase, loadedBytes: this.loadedBytes, totalBytes: this.totalBytes, text, networkBytes: this.networkBytes, bytesPerSecond: bps, etaSeconds: eta });
  }

  #rate(now) {
    this.samples.push([now, this.loadedBytes]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 10000) this.samples.shift();
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    const bps = t1 - t0 > 500 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
    return { bps, eta: bps > 0 ? (this.totalBytes - this.loadedBytes) / bps : null };
  }

  converting() {
    const { bps, eta } = this.#rate(performance.now());
    let text = `Converting: ${bytes(this.loadedBytes)} of ${bytes(this.totalBytes)} of the checkpoint`;
    if (bps > 0) text += ` · ${rate(bps)} · about ${duration(eta)} left`;
    this.report('convert', text, true);
  }
}

/**
 * convertCheckpoint is CogVLM.convert: see cogvlm.js. Options beyond the contract: quant
 * (q4, the default, q8, f16, f32), shardBytes and chunkBytes (model/pkg's defaults when
 * left out), workers (how many converter workers), adapter (the GPU limits to check, from
 * CogVLM.probe; probed when left out), pause (an AbortSignal that stops like a closed tab:
 * what was written stays, and converting again resumes). Resolves to {manifestURL,
 * wasmMemoryBytes (the largest worker's heap), resumedShards}.
 */
export async function convertCheckpoint({ hub = defaultHub, repo, tokenizerRepo = defaultTokenizerRepo, name, quant = 'q4', shardBytes, chunkBytes, workers, adapter, onProgress, signal, pause } = {}) {
  const bad = (what) => new CogVLMError('bad-input', `convert: ${what}`);
  let hubURL;
  try {
    hubURL = new URL(hub);
  } catch {
    throw bad(`hub ${JSON.stringify(hub)} is not a URL`);
  }
  if (hubURL.protocol !== 'https:' && hubURL.hostname !== '127.0.0.1' && hubURL.hostname !== 'localhost') throw bad(`hub ${hub} is not https`);
  for (const [what, r] of [
    ['repo', repo],
    ['tokenizerRepo', tokenizerRepo],
  ]) {
    const problem = repoProblem(r);
    if (problem) throw bad(`${what} ${problem}`);
  }
  name ??= repo.split('/')[1];
  const nameProblem = fileNameProblem(name);
  if (nameProblem) throw bad(`name ${JSON.stringify(name)} ${nameProblem}`);
  const manifestURL = convertedManifestURL(name);
  const store = await PackageStore.open(manifestURL);
  if (!store) throw new CogVLMError('limits', 'this browser has no Cache Storage to keep a converted model in');
  if ((await store.committed())?.bytes) throw bad(`a model named ${name} is already stored: delete it first, or choose another name`);
  if (signal?.aborted) throw new CogVLMError('aborted', 'conversion aborted');

  const progress = new ConvertProgress(onProgress);
  const pool = [];
  let changed = false; // the repository changed: nothing written is worth keeping
  let kept = false; // something of this checkpoint is stored, for a resume
  const onAbort = () => pool.forEach((w) => w.terminate());
  signal?.addEventListener('abort', onAbort, { once: true });
  pause?.addEventListener('abort', onAbort, { once: true });
  try {
    progress.report('plan', `Reading ${repo}'s config and shard headers from ${hubURL.host}…`);
    const open = { hub: hubURL.origin + hubURL.pathname.replace(/\/+$/, ''), repo, tokenizerRepo, manifestURL, quant, shardBytes, chunkBytes };
    const first = convertWorker();
    pool.push(first);
    const countBytes = (kind, c) => {
      if (kind === 'bytes') progress.networkBytes += c.n;
    };
    const plan = await first.request('open', open, { onEvent: countBytes });
    const manifest = JSON.parse(plan.plan);
    const planSHA = await sha256Hex(new TextEncoder().encode(plan.plan));
    progress.totalBytes = plan.inputBytes;
    const packageBytes = manifest.shards.reduce((n, s) => n + s.size, 0);

    // The GPU's limits and the storage quota, before any weight is read.
    adapter ??= await CogVLM.probe();
    checkLimits(manifest, adapter);
    let record = await readRecord(store);
    const source = { hub: open.hub, repo, tokenizerRepo, quant, plan: planSHA, files: plan.files };
    if (record && JSON.stringify(record.source) !== JSON.stringify(source)) {
      await deleteStoredPackage(manifestURL); // another checkpoint, or this one changed since
      record = null;
    }
    record ??= { format: recordFormat, source, tokenizer: null, shards: {} };
    const keys = await store.keys();
    for (const [i, e] of Object.entries(record.shards)) if (!store.has(keys, e)) delete record.shards[i];
    if (record.tokenizer && !store.has(keys, record.tokenizer)) record.tokenizer = null;
    const storedBytes = Object.values(record.shards).reduce((n, e) => n + e.size, 0);
    const { quota, usage } = await estimate();
    if (packageBytes - storedBytes > quota - usage) throw await quotaError(packageBytes - storedBytes);
    await putRecord(store, record);
    kept = true;

    const todo = manifest.shards.map((_, i) => i).filter((i) => !record.shards[i]);
    for (const i of Object.keys(record.shards)) progress.doneBytes += plan.shardInputBytes[i];
    const resumed = manifest.shards.length - todo.length;
    progress.report(
      'convert',
      `${repo}: ${bytes(plan.inputBytes)} to read, a ${bytes(packageBytes)} package in ${manifest.shards.length} shards` + (resumed ? ` (${resumed} already converted)` : ''),
    );

    // Record writes one at a time: a closed tab leaves the last complete one.
    let saving = Promise.resolve();
    const save = () => (saving = saving.then(() => putRecord(store, record)));
    if (!record.tokenizer) {
      record.tokenizer = await first.request('tokenizer', {}, { onEvent: countBytes });
      await save();
    }
    // One worker a core: the page's own thread only routes messages meanwhile.
    const count = Math.max(1, Math.min(workers ?? Math.min(maxConvertWorkers, navigator.hardwareConcurrency || 2), todo.length));
    while (pool.length < count) {
      const w = convertWorker();
      pool.push(w);
    }
    let next = 0;
    const run = async (w, opened) => {
      if (!opened) {
        const p = await w.request('open', open, { onEvent: countBytes });
        if (p.plan !== plan.plan) throw new CogVLMError('integrity', `${repo} changed while it was being converted (its plan differs between two reads): convert again`);
      }
      while (next < todo.length) {
        if (signal?.aborted) throw new CogVLMError('aborted', 'conversion aborted');
        const i = todo[next++];
        const entry = await w.request('shard', { index: i }, {
          onEvent: (kind, c) => {
            countBytes(kind, c);
            if (kind === 'input') {
              progress.shardBytes.set(i, c.done);
              progress.converting();
            }
          },
        });
        progress.shardBytes.delete(i);
        progress.doneBytes += plan.shardInputBytes[i];
        record.shards[i] = entry;
        await save();
        progress.converting();
      }
    };
    await Promise.all(pool.map((w, k) => run(w, k === 0)));
    await saving;

    progress.report('manifest', 'Writing the manifest…');
    const shards = manifest.shards.map((_, i) => record.shards[i]);
    const manifestBytes = new Uint8Array(await first.request('manifest', { tokenizer: record.tokenizer, shards }));
    const final = JSON.parse(new TextDecoder().decode(manifestBytes));
    // One put makes the package loadable; prune drops the record.
    await store.commit(manifestBytes, await sha256Hex(manifestBytes), final);
    const memory = await Promise.all(pool.map((w) => w.request('memory', {})));
    progress.report('ready', `Converted ${repo} into ${name}: ${bytes(packageBytes)}`);
    return { manifestURL, wasmMemoryBytes: Math.max(...memory.map((m) => m.wasmMemoryBytes)), resumedShards: resumed };
  } catch (err) {
    let e = asCogVLMError(err);
    if (signal?.aborted) e = new CogVLMError('aborted', 'conversion aborted');
    else if (pause?.aborted) e = new CogVLMError('aborted', `conversion paused: convert ${repo} to ${name} again to resume`);
    changed = e.code === 'integrity' && /changed/.test(e.message);
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    pause?.removeEventListener('abort', onAbort);
    pool.forEach((w) => w.terminate());
    // Cancelled: free what was written. The repository changed: nothing written is of use.
    // Failed before anything was kept: no empty entry is left in the stored list.
    if (signal?.aborted || changed || !kept) {
      if (!(await store.committed())?.bytes) await deleteStoredPackage(manifestURL);
    }
  }
}

/**
 * checkLimits refuses, before any weight is read, a conversion whose shards would not fit
 * the adapter's buffers. Loading has its own check, the engine's memory plan against its
 * device (wasm/engine MemoryPlan.Check): while converting no engine runs, so this asks
 * the same two questions of the planned manifest — does every shard fit one buffer, and
 * every tensor part one binding?
 */
export function checkLimits(manifest, adapter) {
  // a shard is one buffer (maxBufferSize) and each part of a tensor, data or scales, one
  // binding (maxStorageBufferBindingSize), as model/format/FORMAT.md lays them out:
  // CogVLM-17B's q8 embedding shard has 139 MB, its parts fit the default 128 MiB binding.
  const largest = manifest.shards.reduce((a, s) => (s.size > a.size ? s : a));
  if (largest.size > adapter.maxBufferSize) {
    throw new CogVLMError(
      'limits',
      `${largest.file} has ${largest.size} bytes, more than this GPU's maxBufferSize of ${adapter.maxBufferSize} bytes; convert the package with smaller shards or use a GPU with larger buffers`,
    );
  }
  let part = { name: '', size: 0 };
  for (const t of manifest.tensors ?? []) {
    const size = Math.max(t.length ?? 0, t.scales_length ?? 0);
    if (size > part.size) part = { name: t.name, size };
  }
  if (part.size > adapter.maxStorageBufferBindingSize) {
    throw new CogVLMError(
      'limits',
      `tensor ${part.name} has a part of ${part.size} bytes, more than this GPU's maxStorageBufferBindingSize of ${adapter.maxStorageBufferBindingSize} bytes; use a GPU with larger buffers`,
    );
  }
}

async function readRecord(store) {
  const res = await store.cache.match(store.convertingURL);
  if (!res) return null;
  try {
    const r = await res.json();
    return r?.format === recordFormat ? r : null;
  } catch {
    return null;
  }
}

async function putRecord(store, record) {
  await store.cache.put(store.convertingURL, new Response(JSON.stringify(record), { headers: { 'Content-Type': 'application/json' } }));
}
