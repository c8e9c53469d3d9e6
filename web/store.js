// The browser's copy of downloaded packages: one Cache Storage cache per package, holding
// its manifest.json, tokenizer.json and shards under their URLs.
//
// Why Cache Storage rather than the origin private file system (OPFS):
//  - An entry appears atomically: cache.put resolves once the whole body is stored, and a
//    body cut short (a closed tab, a crash) never becomes visible. So a partial shard can
//    never be mistaken for a whole one, and a download resumes per shard (shards are tens
//    of MiB). OPFS would let us keep partial files and resume with Range requests, but
//    needs our own commit protocol to tell a partial file from a whole one.
//  - It is keyed by URL and reachable from the page (the stored-models panel), the worker
//    and the service worker alike with no locking; OPFS's fast sync handles are exclusive
//    and exist only in workers.
//  - caches.delete(name) drops a package in one call, and storage.estimate counts it.
// Entries are never trusted: every read is checked against the manifest's size and
// SHA-256 (a disk error, an edited profile, a package re-converted on the server), and a
// bad entry is deleted so that the caller downloads it again.

import { CogVLMError } from './errors.js';
import { bytes } from './format.js';

const prefix = 'cogvlm-package:';

/** packageName is the folder a manifest URL names: "/models/demo/manifest.json" → "demo". */
export function packageName(manifestURL) {
  const parts = new URL(manifestURL, globalThis.location?.href).pathname.split('/').filter(Boolean);
  return parts.length >= 2 ? decodeURIComponent(parts[parts.length - 2]) : parts[0] ?? 'package';
}

/** sha256Hex hashes bytes with WebCrypto; lowercase hex like the manifest's. */
export async function sha256Hex(buffer) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', buffer));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * verify checks bytes against a manifest entry {file, size, sha256}: null when they
 * match, else how they differ ("sha256 …, the manifest says …").
 */
export async function verify(entry, buffer) {
  if (buffer.byteLength !== entry.size) return `${buffer.byteLength} bytes, the manifest says ${entry.size}`;
  const sum = await sha256Hex(buffer);
  if (sum !== entry.sha256) return `sha256 ${sum}, the manifest says ${entry.sha256}`;
  return null;
}

/** PackageStore is the stored copy of one package (by its manifest URL). */
export class PackageStore {
  /** open returns the store of the package at manifestURL, or null without Cache Storage. */
  static async open(manifestURL) {
    if (!globalThis.caches) return null;
    const url = new URL(manifestURL, globalThis.location?.href).href;
    return new PackageStore(url, await caches.open(prefix + url));
  }

  constructor(manifestURL, cache) {
    this.manifestURL = manifestURL;
    this.cache = cache;
  }

  urlOf(file) {
    return new URL(file, this.manifestURL).href;
  }

  /** manifestText is the stored manifest.json, or null. */
  async manifestText() {
    const res = await this.cache.match(this.manifestURL);
    return res ? res.text() : null;
  }

  async putManifest(text) {
    await this.#put(this.manifestURL, text, 'application/json', new Blob([text]).size);
  }

  /** files is the set of file names stored for this package (manifest included). */
  async files() {
    const keys = await this.cache.keys();
    return new Set(keys.map((req) => decodeURIComponent(new URL(req.url).pathname.split('/').pop())));
  }

  /**
   * read returns the stored bytes of entry once verified, or {buffer: null, problem} when
   * none is stored (problem null) or the stored copy is bad (it is deleted then; problem
   * says how it differs from the manifest).
   */
  async read(entry) {
    const url = this.urlOf(entry.file);
    const res = await this.cache.match(url);
    if (!res) return { buffer: null, problem: null };
    let buffer;
    let problem;
    try {
      buffer = await res.arrayBuffer();
      problem = await verify(entry, buffer);
    } catch (err) {
      problem = `unreadable (${err.message})`;
    }
    if (problem === null) return { buffer, problem: null };
    await this.cache.delete(url);
    return { buffer: null, problem };
  }

  /** write stores verified bytes. A full storage rejects with code limits and the sizes. */
  async write(entry, buffer) {
    await this.#put(this.urlOf(entry.file), buffer, 'application/octet-stream', entry.size);
  }

  /** prune deletes entries the manifest no longer lists (an older version's shards). */
  async prune(manifest) {
    const keep = new Set([this.manifestURL, this.urlOf(manifest.tokenizer.file), ...manifest.shards.map((s) => this.urlOf(s.file))]);
    for (const req of await this.cache.keys()) {
      if (!keep.has(req.url)) await this.cache.delete(req);
    }
  }

  async #put(url, body, type, size) {
    try {
      await this.cache.put(url, new Response(body, { headers: { 'Content-Type': type } }));
    } catch (err) {
      if (err?.name === 'QuotaExceededError') throw await quotaError(size, err);
      throw err;
    }
  }
}

/** quotaError explains a full storage with the numbers from navigator.storage.estimate. */
export async function quotaError(needed, cause) {
  const { quota, usage } = await estimate();
  return new CogVLMError(
    'limits',
    `browser storage is full: ${bytes(needed)} more are needed, this site may use ${bytes(quota)} and uses ${bytes(usage)} (${bytes(Math.max(0, quota - usage))} free); free disk space or delete stored models`,
    { cause },
  );
}

/** estimate is navigator.storage.estimate(), or infinite room where the API is missing. */
export async function estimate() {
  if (!navigator.storage?.estimate) return { quota: Infinity, usage: 0 };
  const { quota = Infinity, usage = 0 } = await navigator.storage.estimate();
  return { quota, usage };
}

/**
 * storedPackages lists every stored package: {manifestURL, name, totalBytes, storedBytes,
 * complete}, sizes from its stored manifest (the stored bytes are verified when loaded).
 */
export async function storedPackages() {
  if (!globalThis.caches) return [];
  const out = [];
  for (const name of await caches.keys()) {
    if (!name.startsWith(prefix)) continue;
    const store = new PackageStore(name.slice(prefix.length), await caches.open(name));
    const files = await store.files();
    let manifest = null;
    try {
      manifest = JSON.parse((await store.manifestText()) ?? 'null');
    } catch {
      manifest = null; // unreadable: listed with what is known, so that it can be deleted
    }
    const entries = manifest ? [manifest.tokenizer, ...manifest.shards] : [];
    const stored = entries.filter((e) => files.has(e.file));
    out.push({
      manifestURL: store.manifestURL,
      name: packageName(store.manifestURL),
      totalBytes: entries.reduce((n, e) => n + e.size, 0),
      storedBytes: stored.reduce((n, e) => n + e.size, 0),
      complete: manifest !== null && stored.length === entries.length,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** deleteStoredPackage removes a package's stored copy. */
export async function deleteStoredPackage(manifestURL) {
  if (!globalThis.caches) return false;
  return caches.delete(prefix + new URL(manifestURL, globalThis.location?.href).href);
}
