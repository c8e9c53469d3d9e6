// The browser's copy of downloaded packages: one Cache Storage cache per package.
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
//
// The layout makes an update atomic per package: the copy in use stays whole until the
// next one is complete and verified.
//  - MANIFEST_URL: the committed manifest, whose every file is stored (or was, until a
//    disk error). Its Response records the SHA-256 of its bytes (manifestSHAHeader),
//    checked whenever it is read: the stored manifest has a checksum of its own.
//  - MANIFEST_URL?pending: the manifest of a download not yet complete (a first download
//    or an update), so that it resumes and the panel can show it.
//  - MANIFEST_URL?converting: the record of a conversion in this browser not yet complete
//    (convert.js), so that it resumes and the panel can show it.
//  - DIR/FILE?sha256=HEX: a file's bytes, keyed by content. Two versions of a package
//    that both have a shard-00003.bin keep both, and a shard that did not change between
//    them is stored once and not downloaded again.
// Committing writes MANIFEST_URL (one atomic put), then drops the pending manifest and
// every file the committed one does not list: an interrupted update leaves the old copy
// whole and the new one resumable.
// Entries are never trusted: every read is checked against the manifest's size and
// SHA-256 (a disk error, an edited profile), and a bad entry is deleted so that the caller
// downloads it again.

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

/** The header of a stored manifest that records the SHA-256 of its bytes. */
const manifestSHAHeader = 'X-Cogvlm-Manifest-SHA256';

/** PackageStore is the stored copy of one package (by its manifest URL). */
export class PackageStore {
  /** open returns the store of the package at manifestURL, or null without Cache Storage. */
  static async open(manifestURL) {
    if (!globalThis.caches) return null;
    const url = storeURL(manifestURL);
    return new PackageStore(url, await caches.open(prefix + url));
  }

  constructor(manifestURL, cache) {
    this.manifestURL = manifestURL;
    this.pendingURL = `${manifestURL}?pending`;
    this.convertingURL = `${manifestURL}?converting`;
    this.cache = cache;
  }

  /** keyOf is where an entry's bytes are stored: by name and content. */
  keyOf(entry) {
    return `${new URL(entry.file, this.manifestURL).href}?sha256=${entry.sha256}`;
  }

  /**
   * committed is the manifest of the complete stored copy, {bytes, sha256}, or null; or
   * {problem} when its bytes no longer match the SHA-256 recorded with them.
   */
  async committed() {
    return this.#readManifest(this.manifestURL);
  }

  /** pending is the manifest of a download not yet complete, like committed. */
  async pending() {
    return this.#readManifest(this.pendingURL);
  }

  async #readManifest(url) {
    const res = await this.cache.match(url);
    if (!res) return null;
    const bytes = new Uint8Array(await res.arrayBuffer());
    const sha256 = await sha256Hex(bytes);
    // A copy stored before the SHA-256 was recorded has none: trusted as it is.
    const recorded = res.headers.get(manifestSHAHeader) ?? sha256;
    if (recorded !== sha256) return { problem: `its sha256 is ${sha256}, ${recorded} was recorded when it was stored` };
    return { bytes, sha256 };
  }

  /** stage stores the manifest of a download that begins (or resumes). */
  async stage(bytes, sha256) {
    await this.#putManifest(this.pendingURL, bytes, sha256);
  }

  /**
   * commit makes manifest the stored copy once all its files are stored and verified:
   * the one put that switches versions, then the old version's files go.
   */
  async commit(bytes, sha256, manifest) {
    await this.#putManifest(this.manifestURL, bytes, sha256);
    await this.cache.delete(this.pendingURL);
    await this.prune(manifest);
  }

  async #putManifest(url, bytes, sha256) {
    await this.#put(url, new Response(bytes, { headers: { 'Content-Type': 'application/json', [manifestSHAHeader]: sha256 } }), bytes.byteLength);
  }

  /** keys is the set of the cache's keys (URLs). */
  async keys() {
    return new Set((await this.cache.keys()).map((req) => req.url));
  }

  /** has reports whether keys (from keys()) hold the bytes of entry (not whether they are intact). */
  has(keys, entry) {
    return keys.has(this.keyOf(entry)) || keys.has(this.legacyKeyOf(entry));
  }

  /** legacyKeyOf is where copies stored before keys named the content kept an entry. */
  legacyKeyOf(entry) {
    return new URL(entry.file, this.manifestURL).href;
  }

  /**
   * read returns the stored bytes of entry once verified, or {buffer: null, problem} when
   * none is stored (problem null) or the stored copy is bad (it is deleted then; problem
   * says how it differs from the manifest). legacy is true for bytes found under the key
   * of an older layout: the caller stores them again under keyOf.
   */
  async read(entry) {
    for (const [url, legacy] of [
      [this.keyOf(entry), false],
      [this.legacyKeyOf(entry), true],
    ]) {
      const res = await this.cache.match(url);
      if (!res) continue;
      let buffer;
      let problem;
      try {
        buffer = await res.arrayBuffer();
        problem = await verify(entry, buffer);
      } catch (err) {
        problem = `unreadable (${err.message})`;
      }
      if (problem === null) return { buffer, problem: null, legacy };
      await this.cache.delete(url);
      return { buffer: null, problem };
    }
    return { buffer: null, problem: null };
  }

  /** write stores verified bytes. A full storage rejects with code limits and the sizes. */
  async write(entry, buffer) {
    await this.#put(this.keyOf(entry), new Response(buffer, { headers: { 'Content-Type': 'application/octet-stream' } }), entry.size);
  }

  /** prune deletes what the committed manifest does not list: older versions' files, a stale pending manifest. */
  async prune(manifest) {
    const keep = new Set([this.manifestURL, ...[manifest.tokenizer, ...manifest.shards].map((e) => this.keyOf(e))]);
    for (const req of await this.cache.keys()) {
      if (!keep.has(req.url)) await this.cache.delete(req);
    }
  }

  async #put(url, response, size) {
    try {
      await this.cache.put(url, response);
    } catch (err) {
      if (err?.name === 'QuotaExceededError') throw await quotaError(size, err);
      throw err;
    }
  }
}

/**
 * convertedManifestURL is where a package converted in this browser (convert.js) is
 * stored: under /converted/ of this origin, a path the server never serves, so that
 * loading it reads only the stored copy (loader.js).
 */
export function convertedManifestURL(name) {
  return new URL(`/converted/${encodeURIComponent(name)}/manifest.json`, globalThis.location.origin).href;
}

/** isConverted reports whether a manifest URL names a package converted in this browser. */
export function isConverted(manifestURL) {
  const url = new URL(manifestURL, globalThis.location?.href);
  return url.origin === globalThis.location?.origin && url.pathname.startsWith('/converted/');
}

/** storeURL is the URL a package's copy is stored under: the manifest's, without a fragment. */
export function storeURL(manifestURL) {
  const url = new URL(manifestURL, globalThis.location?.href);
  url.hash = '';
  return url.href;
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
 * complete}, sizes from its committed manifest, else the pending one of a download that
 * has not completed (the stored bytes are verified when loaded).
 */
export async function storedPackages() {
  if (!globalThis.caches) return [];
  const out = [];
  for (const name of await caches.keys()) {
    if (!name.startsWith(prefix)) continue;
    const store = new PackageStore(name.slice(prefix.length), await caches.open(name));
    const keys = await store.keys();
    let manifest = null;
    let complete = false;
    for (const [read, whole] of [
      [() => store.committed(), true],
      [() => store.pending(), false],
    ]) {
      try {
        const m = await read();
        if (!m?.bytes) continue;
        manifest = JSON.parse(new TextDecoder().decode(m.bytes));
        complete = whole;
        break;
      } catch {
        // unreadable: listed with what is known, so that it can be deleted
      }
    }
    if (!manifest) {
      // A conversion not finished (convert.js): its record lists the shards written.
      const record = await (await store.cache.match(store.convertingURL))?.json().catch(() => null);
      if (record?.shards) manifest = { tokenizer: record.tokenizer, shards: Object.values(record.shards) };
    }
    const entries = manifest ? [manifest.tokenizer, ...manifest.shards].filter(Boolean) : [];
    const stored = entries.filter((e) => store.has(keys, e));
    out.push({
      manifestURL: store.manifestURL,
      name: packageName(store.manifestURL),
      totalBytes: entries.reduce((n, e) => n + e.size, 0),
      storedBytes: stored.reduce((n, e) => n + e.size, 0),
      complete: complete && stored.length === entries.length,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** deleteStoredPackage removes a package's stored copy. */
export async function deleteStoredPackage(manifestURL) {
  if (!globalThis.caches) return false;
  return caches.delete(prefix + storeURL(manifestURL));
}
