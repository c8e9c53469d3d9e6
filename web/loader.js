// Loading a package in the worker: the manifest, then the files the engine asks for —
// downloaded a few at a time, verified with SHA-256, stored, and handed to the engine in
// manifest order as it uploads them to the GPU. A package comes from the server (and the
// browser's stored copy of it) or from a folder on disk. This side owns every byte's
// journey (fetch, verify, store); the engine owns the GPU: it requests the device, plans
// memory against its limits and only then asks for files (docs/DESIGN.md, "One owner per
// job").

import { CogVLMError, asCogVLMError } from './errors.js';
import { readBody, readCapped } from './body.js';
import { bytes, duration, rate } from './format.js';
import { PackageStore, estimate, isConverted, packageName, quotaError, sha256Hex, storeURL, verify } from './store.js';

export { readCapped }; // the manifest's reader, from body.js

/** How many files are downloaded at once, and so at most held in memory ahead of the GPU. */
export const downloadConcurrency = 4;

const manifestFormat = 'cogvlm-web-package';
const manifestVersion = 1;

/** The largest manifest.json read (CogVLM-17B's is about 0.5 MB): a bigger answer is not ours. */
export const maxManifestBytes = 16 << 20;
/** The largest tokenizer.json (model/pkg MaxTokenizerBytes; CogVLM's is 1.8 MB). */
export const maxTokenizerBytes = 64 << 20;
/** The longest file name (model/pkg MaxFileNameLength). */
const maxFileNameLength = 128;

/**
 * fileNameProblem is the one rule for the names of a package's files, the same as Go's
 * format.CheckFileName (model/format/testdata/file_names.json is the table both are tested on):
 * null for 1 to 128 characters from [A-Za-z0-9._-], not starting with a dot and not
 * manifest.json in any case; else why not. Such a name resolves, as a URL relative to the
 * manifest, to a file in the package folder: no separators (/ or \), scheme or drive (:),
 * escapes (%), query or fragment (? #), and never "." or "..".
 */
export function fileNameProblem(name) {
  if (typeof name !== 'string') return `is ${name === null ? 'null' : typeof name}, not a string`;
  if (name === '') return 'is empty';
  const length = new TextEncoder().encode(name).length;
  if (length > maxFileNameLength) return `is ${length} bytes long, more than ${maxFileNameLength}`;
  const bad = [...name].find((c) => !/^[A-Za-z0-9._-]$/.test(c));
  if (bad !== undefined) return `has the character ${JSON.stringify(bad)} (allowed: letters, digits, '.', '_', '-')`;
  if (name.startsWith('.')) return 'starts with a dot';
  if (name.toLowerCase() === 'manifest.json') return 'is the name of the manifest itself';
  return null;
}

/**
 * parseManifest checks the parts of manifest.json that the worker relies on (the engine
 * checks the tensors and config itself), naming the first field at fault. It is the one
 * place where file names are checked, before anything is downloaded or read for them.
 */
export function parseManifest(text, where) {
  let m;
  try {
    m = JSON.parse(text);
  } catch (err) {
    throw new CogVLMError('bad-input', `${where}: not JSON (${err.message})`);
  }
  const bad = (what) => new CogVLMError('bad-input', `${where}: ${what}`);
  if (m?.format !== manifestFormat) throw bad(`format is ${JSON.stringify(m?.format)}, want "${manifestFormat}"`);
  if (m.format_version !== manifestVersion) {
    throw bad(`format_version is ${m.format_version}, this app reads version ${manifestVersion}`);
  }
  const names = new Map(); // lower-case name → which entry has it (on macOS and Windows, one file)
  const checkEntry = (e, name) => {
    const problem = fileNameProblem(e?.file);
    if (problem) throw bad(`${name}.file ${JSON.stringify(e?.file)} is not a plain file name inside the package: it ${problem}`);
    const key = e.file.toLowerCase();
    if (names.has(key)) throw bad(`${name}.file ${JSON.stringify(e.file)} is also ${names.get(key)} (names must differ, ignoring case)`);
    names.set(key, name);
    if (!Number.isSafeInteger(e.size) || e.size < 0) throw bad(`${name}.size is ${e.size}, want a byte count`);
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) {
      throw bad(`${name}.sha256 is ${JSON.stringify(e.sha256)}, want 64 lowercase hex digits`);
    }
  };
  checkEntry(m.tokenizer, 'tokenizer');
  if (m.tokenizer.size > maxTokenizerBytes) throw bad(`tokenizer.size is ${m.tokenizer.size}, more than the ${maxTokenizerBytes} bytes a tokenizer may have`);
  if (!Array.isArray(m.shards) || m.shards.length === 0) throw bad('shards is missing or empty');
  m.shards.forEach((s, i) => checkEntry(s, `shards[${i}]`));
  return m;
}

/** LoadProgress turns byte counts into the API's one progress shape {phase, loadedBytes, totalBytes, text}. */
class LoadProgress {
  constructor(totalBytes, emit) {
    this.totalBytes = totalBytes;
    this.emit = emit;
    this.doneBytes = 0; // entries complete (verified); the upload phase starts at totalBytes
    this.partial = new Map(); // file → bytes received so far
    this.networkBytes = 0;
    this.samples = []; // [time ms, networkBytes] over the last few seconds, for the rate
    this.lastEmit = 0;
    this.phase = 'manifest';
  }

  get loadedBytes() {
    let n = this.doneBytes;
    for (const v of this.partial.values()) n += v;
    return n;
  }

  /** report sends the current state; byte updates are throttled to ten a second. */
  report(phase, text, { throttle = false } = {}) {
    const now = performance.now();
    if (throttle && phase === this.phase && now - this.lastEmit < 100) return;
    this.phase = phase;
    this.lastEmit = now;
    this.emit({ phase, loadedBytes: Math.min(this.loadedBytes, this.totalBytes), totalBytes: this.totalBytes, text });
  }

  received(file, n) {
    this.partial.set(file, (this.partial.get(file) ?? 0) + n);
    this.networkBytes += n;
    const now = performance.now();
    this.samples.push([now, this.networkBytes]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 5000) this.samples.shift();
    this.report('download', this.downloadText(), { throttle: true });
  }

  failed(file) {
    this.partial.delete(file);
  }

  done(entry, fromNetwork) {
    this.partial.delete(entry.file);
    this.doneBytes += entry.size;
    this.report('download', fromNetwork || this.networkBytes > 0 ? this.downloadText() : this.storedText(), { throttle: true });
  }

  downloadText() {
    const [t0, b0] = this.samples[0] ?? [0, 0];
    const [t1, b1] = this.samples[this.samples.length - 1] ?? [0, 0];
    const bps = t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
    let text = `Downloading: ${bytes(this.loadedBytes)} of ${bytes(this.totalBytes)}`;
    if (bps > 0) text += ` · ${rate(bps)} · about ${duration((this.totalBytes - this.loadedBytes) / bps)} left`;
    return text;
  }

  storedText() {
    return `Reading the stored copy: ${bytes(this.loadedBytes)} of ${bytes(this.totalBytes)} verified`;
  }
}

/**
 * ShardPipeline obtains shards ahead of the engine, a few at a time: take(file) is what the
 * engine's readFile calls, in manifest order. Nothing starts before the first take (the
 * engine asks only after its device has accepted the memory plan); then it keeps at most
 * `window` shards started but not yet taken, so a fast network never piles gigabytes up in
 * memory.
 */
export class ShardPipeline {
  constructor(entries, obtain, window) {
    this.entries = entries;
    this.obtain = obtain;
    this.window = window;
    this.started = new Map(); // file → Promise<ArrayBuffer>
    this.next = 0;
    this.taken = 0;
    this.failure = null;
  }

  #fill() {
    while (this.failure === null && this.next < this.entries.length && this.next < this.taken + this.window) {
      this.#start(this.entries[this.next++]);
    }
  }

  #start(entry) {
    const p = this.obtain(entry);
    // The first failure stops new downloads; those in flight finish and are stored, so a
    // retry resumes after them. Its error is the one load reports, not the engine's echo.
    p.catch((err) => {
      this.failure ??= err;
    });
    this.started.set(entry.file, p);
  }

  async take(file) {
    this.#fill();
    if (!this.started.has(file)) {
      const entry = this.entries.find((e) => e.file === file);
      if (!entry) throw new CogVLMError('bad-input', `the engine asked for ${file}, which the manifest does not list`);
      if (this.failure !== null) throw this.failure;
      this.#start(entry);
    }
    try {
      return await this.started.get(file);
    } finally {
      this.started.delete(file);
      this.taken++;
      this.#fill();
    }
  }

  /** settle waits for the downloads still running (after a failure, before reporting it). */
  async settle() {
    await Promise.allSettled(this.started.values());
  }
}

/**
 * RemotePackage is a package on the server, with its stored copy in the browser. A manifest
 * URL may pin the manifest's bytes with a fragment, "…/manifest.json#sha256=HEX" (as a
 * page's Subresource Integrity does): a manifest that does not match is not used.
 */
export class RemotePackage {
  constructor(manifestURL) {
    const url = new URL(manifestURL, self.location.href);
    if (url.hash) {
      const pin = /^#sha256=([0-9a-f]{64})$/.exec(url.hash);
      if (!pin) throw new CogVLMError('bad-input', `${url.href}: the fragment pins the manifest as #sha256= and 64 lowercase hex digits`);
      this.pin = pin[1];
    }
    this.manifestURL = storeURL(url.href);
    this.name = packageName(this.manifestURL);
    this.concurrency = downloadConcurrency;
  }

  urlOf(file) {
    return new URL(file, this.manifestURL).href;
  }

  /**
   * open reads the manifest: from the server, else the stored copy — offline, and also when
   * the server's answer is no usable manifest (a captive portal's page, a broken or
   * unpinned package): a stored copy is only replaced by a complete, verified one.
   */
  async open({ signal, note }) {
    this.store = await PackageStore.open(this.manifestURL);
    this.storing = this.store !== null;
    if (isConverted(this.manifestURL)) return this.#convertedManifest(note);
    let fresh;
    try {
      fresh = await this.#fetchManifest(signal);
    } catch (err) {
      if (signal?.aborted) throw asCogVLMError(err);
      const why = err instanceof CogVLMError ? err : new CogVLMError('network', `cannot download ${this.manifestURL}: ${err.message}`);
      const stored = await this.#storedManifest(note);
      if (!stored) {
        if (why.code === 'network') throw new CogVLMError('network', `${why.message}, and no copy is stored in this browser`);
        throw why;
      }
      note(
        why.code === 'network'
          ? `The server cannot be reached (${why.message}): using the copy stored in this browser.`
          : `The server's answer is not a usable manifest (${why.message}): using the copy stored in this browser.`,
      );
      this.source = 'storage';
      return stored;
    }
    this.source = 'network';
    const committed = this.store && (await this.store.committed());
    this.update = committed?.sha256 !== fresh.sha256;
    this.previous = Boolean(committed?.bytes); // an older version stays stored until this one is complete
    this.fresh = fresh;
    if (this.update && this.storing) await this.#writeOrStopStoring(() => this.store.stage(fresh.bytes, fresh.sha256), note);
    return fresh;
  }

  /** fetchManifest downloads and checks the manifest: {text, manifest, bytes, sha256}. */
  async #fetchManifest(signal) {
    const res = await fetch(this.manifestURL, { cache: 'no-cache', signal });
    if (!res.ok) throw new CogVLMError('network', `HTTP ${res.status} for ${this.manifestURL}`);
    const bytes = await readCapped(res, maxManifestBytes, this.manifestURL);
    return this.#checkManifest(bytes, this.manifestURL);
  }

  /** convertedManifest is the stored manifest of a package converted in this browser: there is no server copy. */
  async #convertedManifest(note) {
    const stored = await this.#storedManifest(note);
    if (!stored) throw new CogVLMError('bad-input', `${this.name} is not a model converted in this browser (nothing complete is stored under ${this.manifestURL})`);
    this.source = 'storage';
    return stored;
  }

  /** storedManifest is the committed stored copy, checked as a download is, or null (with a note why). */
  async #storedManifest(note) {
    const stored = await this.store?.committed();
    if (!stored) return null;
    try {
      if (stored.problem) throw new CogVLMError('integrity', stored.problem);
      return await this.#checkManifest(stored.bytes, `the stored copy of ${this.manifestURL}`, stored.sha256);
    } catch (err) {
      note(`The stored copy of ${this.name} cannot be used: ${err.message}.`);
      return null;
    }
  }

  async #checkManifest(bytes, where, sha256) {
    sha256 ??= await sha256Hex(bytes);
    if (this.pin && sha256 !== this.pin) throw new CogVLMError('integrity', `${where}: sha256 ${sha256}, the URL pins ${this.pin}`);
    let text;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new CogVLMError('bad-input', `${where}: not UTF-8 text`);
    }
    return { text, manifest: parseManifest(text, where), bytes, sha256 };
  }

  /**
   * prepare decides whether this load stores what it downloads: not when the browser's
   * quota cannot hold the missing files (the model still loads, and says so).
   */
  async prepare(manifest, { note }) {
    if (!this.storing) return;
    const keys = await this.store.keys();
    const missing = [manifest.tokenizer, ...manifest.shards].filter((e) => !this.store.has(keys, e));
    const needed = missing.reduce((n, e) => n + e.size, 0);
    const { quota, usage } = await estimate();
    if (needed > quota - usage) {
      this.storing = false;
      note(`${(await quotaError(needed)).message}. ${this.#notKept()}`);
    }
  }

  /** obtain returns an entry's verified bytes: the stored copy, else a download (then stored). */
  async obtain(entry, { signal, progress, note }) {
    if (this.store) {
      const { buffer, problem, legacy } = await this.store.read(entry);
      if (buffer) {
        if (legacy && this.storing) await this.#writeOrStopStoring(() => this.store.write(entry, buffer), note);
        progress.done(entry, false);
        return buffer;
      }
      if (problem) note(`The stored copy of ${entry.file} was damaged (${problem}); downloading it again.`);
    }
    if (this.source === 'storage') {
      throw new CogVLMError('network', `${entry.file} is not stored in this browser and the server cannot be reached`);
    }
    const buffer = await this.#download(entry, signal, progress);
    const problem = await verify(entry, buffer);
    if (problem) {
      progress.failed(entry.file);
      throw new CogVLMError('integrity', `${this.urlOf(entry.file)}: ${problem} (the server's copy is damaged, or the package changed while loading)`);
    }
    if (this.storing) await this.#writeOrStopStoring(() => this.store.write(entry, buffer), note);
    progress.done(entry, true);
    return buffer;
  }

  /**
   * finish runs once every file is verified (and the engine has them): with all of them
   * stored, the new manifest becomes the stored copy, and the old version's files go.
   */
  async finish(manifest) {
    if (!this.storing || this.source !== 'network') return;
    if (this.update) await this.store.commit(this.fresh.bytes, this.fresh.sha256, manifest);
    else await this.store.prune(manifest);
  }

  async #writeOrStopStoring(write, note) {
    try {
      await write();
    } catch (err) {
      if (err?.code !== 'limits') throw err;
      this.storing = false;
      note(`${err.message}. ${this.#notKept()}`);
    }
  }

  #notKept() {
    return this.update && this.previous
      ? 'This version loads now but is not stored; the stored copy stays the previous version.'
      : 'The model loads now but is not kept for offline use.';
  }

  /** download streams one file into a buffer of the manifest's size, counting bytes as they come. */
  async #download(entry, signal, progress) {
    const url = this.urlOf(entry.file);
    // no-store: the stored copy is ours, verified; the HTTP cache would only hold a second one.
    let res;
    try {
      res = await fetch(url, { cache: 'no-store', signal });
    } catch (err) {
      throw signal?.aborted ? asCogVLMError(err) : new CogVLMError('network', `cannot download ${url}: ${err.message}`);
    }
    if (!res.ok) throw new CogVLMError('network', `HTTP ${res.status} for ${url}`);
    let out;
    try {
      out = new Uint8Array(entry.size);
    } catch (err) {
      throw new CogVLMError('limits', `${url}: this tab cannot hold the ${entry.size} bytes the manifest says (${err.message})`);
    }
    let n = 0;
    try {
      await readBody(
        res,
        out,
        (k) => {
          n += k;
          progress.received(entry.file, k);
        },
        () => new CogVLMError('integrity', `${url}: more than the ${entry.size} bytes the manifest says`),
      );
    } catch (err) {
      progress.failed(entry.file);
      if (err instanceof CogVLMError) throw err;
      if (signal?.aborted) throw asCogVLMError(err);
      throw new CogVLMError('network', `download of ${url} broke off after ${n} of ${entry.size} bytes: ${err.message}`);
    }
    if (n !== entry.size) {
      progress.failed(entry.file);
      throw new CogVLMError('integrity', `${url}: ${n} bytes, the manifest says ${entry.size}`);
    }
    return out.buffer;
  }
}

/**
 * FolderPackage is a package folder picked from disk: an array of Files (from
 * <input webkitdirectory>, with webkitRelativePath) or a FileSystemDirectoryHandle. Nothing
 * is downloaded or stored; every file is still verified against the manifest.
 */
export class FolderPackage {
  constructor(folder) {
    this.folder = folder;
    this.concurrency = 2;
    this.source = 'folder';
    this.storing = false;
  }

  async open() {
    const f = this.folder;
    if (f && typeof f.getFileHandle === 'function') {
      this.name = f.name;
      this.lookup = async (name) => {
        try {
          return await (await f.getFileHandle(name)).getFile();
        } catch {
          return null;
        }
      };
    } else if (Array.isArray(f) && f.every((x) => x instanceof File)) {
      this.#indexFiles(f);
    } else {
      throw new CogVLMError('bad-input', 'a package folder is a list of Files or a directory handle');
    }
    // Never fetched (this worker hands the engine every file): it names the folder in
    // the engine's messages and the page's summary.
    this.manifestURL = new URL(`/local/${encodeURIComponent(this.name)}/manifest.json`, self.location.origin).href;
    const file = await this.lookup('manifest.json');
    if (!file) throw new CogVLMError('bad-input', `the folder "${this.name}" has no manifest.json: pick a converted package folder (cogvlm convert --out)`);
    if (file.size > maxManifestBytes) throw new CogVLMError('bad-input', `${this.name}/manifest.json: ${file.size} bytes, more than the ${maxManifestBytes} a manifest may have`);
    const text = await file.text();
    return { text, manifest: parseManifest(text, `${this.name}/manifest.json`) };
  }

  #indexFiles(files) {
    // The shallowest manifest.json names the package folder; with no relative paths (files
    // picked one by one) every file is in it.
    const path = (x) => x.webkitRelativePath || x.name;
    const manifests = files.filter((x) => x.name === 'manifest.json').sort((a, b) => path(a).split('/').length - path(b).split('/').length);
    const dir = manifests.length ? path(manifests[0]).slice(0, -'manifest.json'.length) : '';
    const byPath = new Map(files.map((x) => [path(x), x]));
    this.name = dir.split('/').filter(Boolean).pop() ?? 'package';
    this.lookup = async (name) => byPath.get(dir + name) ?? null;
  }

  async prepare() {}

  async obtain(entry, { progress }) {
    const file = await this.lookup(entry.file);
    if (!file) throw new CogVLMError('bad-input', `the folder "${this.name}" has no ${entry.file}, which its manifest lists`);
    if (file.size !== entry.size) {
      throw new CogVLMError('integrity', `${this.name}/${entry.file}: ${file.size} bytes, the manifest says ${entry.size}`);
    }
    const buffer = await file.arrayBuffer();
    const problem = await verify(entry, buffer);
    if (problem) throw new CogVLMError('integrity', `${this.name}/${entry.file}: ${problem}`);
    progress.done(entry, false);
    return buffer;
  }

  async finish() {}
}

/**
 * loadPackage runs the whole load of a package into the engine (the engine object of
 * wasm/main.go), handing it the manifest's text and, when it asks, the tokenizer and the
 * shards that this worker read and verified (from the server, the stored copy or a folder
 * on disk): the engine fetches nothing itself. The engine checks the GPU first (its
 * device, the memory plan against the limits): no file but the manifest is read before
 * that. replay is web/cogvlm-replay.js's module, for the engine. Returns what the page
 * shows about the model.
 */
export async function loadPackage(engine, pkg, { onProgress, signal, precision, replay }) {
  const notes = [];
  let progress = new LoadProgress(0, onProgress);
  const note = (text) => {
    notes.push(text);
    progress.report(progress.phase, text);
  };
  const check = () => {
    if (signal?.aborted) throw new CogVLMError('aborted', 'loading aborted');
  };

  progress.report('manifest', 'Reading the package manifest…');
  const { text, manifest } = await pkg.open({ signal, note });
  check();
  await pkg.prepare(manifest, { note });

  const entries = [manifest.tokenizer, ...manifest.shards];
  progress = new LoadProgress(
    entries.reduce((n, e) => n + e.size, 0),
    onProgress,
  );
  const ctx = { signal, progress, note };
  const shards = new ShardPipeline(manifest.shards, (e) => pkg.obtain(e, ctx), pkg.concurrency);
  let tokenizer = null;
  let tokenizerFailure = null;
  const readFile = (file) => {
    if (file !== manifest.tokenizer.file) return shards.take(file);
    // The engine's first request: its device has accepted the plan.
    progress.report('download', pkg.source === 'network' ? 'Downloading…' : 'Reading the stored copy…');
    tokenizer ??= pkg.obtain(manifest.tokenizer, ctx).catch((err) => {
      tokenizerFailure = err; // reported as is, not as the engine's echo of it
      throw err;
    });
    return tokenizer;
  };
  let info;
  try {
    info = await engine.load({
      name: pkg.manifestURL,
      manifest: text,
      precision,
      replay,
      readFile,
      onProgress: (uploaded, total) => {
        if (progress.doneBytes >= progress.totalBytes) {
          progress.report('upload', `Uploading to the GPU: ${bytes(uploaded)} of ${bytes(total)}`, { throttle: true });
        }
      },
    });
  } catch (err) {
    await shards.settle();
    throw asCogVLMError(tokenizerFailure ?? shards.failure ?? err);
  }
  check(); // cancelled while the last shards went to the GPU
  await pkg.finish(manifest);
  progress.report('ready', `Ready: ${pkg.name}`);
  return {
    name: pkg.name,
    manifestURL: pkg.source === 'folder' ? null : pkg.manifestURL,
    source: pkg.source,
    stored: pkg.storing,
    totalBytes: progress.totalBytes,
    encodings: [...new Set((manifest.tensors ?? []).map((t) => t.encoding))].sort(),
    // config.json's _name_or_path names the checkpoint's variant (cogvlm-grounding-generalist).
    nameOrPath: typeof manifest.config?._name_or_path === 'string' ? manifest.config._name_or_path : '',
    notes,
    ...info,
  };
}
