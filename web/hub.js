// Reading a checkpoint from a Hugging Face hub: its files by their resolve URLs,
// {hub}/{owner}/{name}/resolve/main/{file}, which the hub answers itself (small files) or
// with a redirect to its file host (cdn-lfs, the Xet bridge) for large ones. The browser
// follows the redirect; a Range request of one byte range needs no CORS preflight, and the
// file hosts answer it with 206 Partial Content. Nothing here is sent but the file's URL and
// the byte range.
//
// Every answer is checked: a 404 says which file the repository lacks, a 200 where a
// range was asked (a host that ignores Range) or a body shorter or longer than asked is
// refused, and a file whose size, ETag or Last-Modified changes between two reads (the
// repository was updated mid-way) stops the conversion: its bytes would not be one
// checkpoint.

import { readBody, readCapped } from './body.js';
import { CogVLMError } from './errors.js';

/** The public hub; its files come from its own host and its file hosts (see server --hub). */
export const defaultHub = 'https://huggingface.co';

/** The published CogVLM v1 checkpoints (model/demo's presets), and the tokenizer they use. */
export const publishedRepos = Object.freeze([
  'THUDM/cogvlm-chat-hf',
  'THUDM/cogvlm-base-490-hf',
  'THUDM/cogvlm-base-224-hf',
  'THUDM/cogvlm-grounding-generalist-hf',
]);
export const defaultTokenizerRepo = 'lmsys/vicuna-7b-v1.5';

/** repoProblem is null for an "owner/name" repository id as the hub spells them, else why not. */
export function repoProblem(repo) {
  if (typeof repo !== 'string') return 'is not a string';
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$/.test(repo) || repo.includes('..')) {
    return `${JSON.stringify(repo)} is not owner/name (letters, digits, '-', '_', '.')`;
  }
  return null;
}

/** resolveURL is where the hub serves a file of a repository's main branch. */
export function resolveURL(hub, repo, file) {
  return `${hub.replace(/\/+$/, '')}/${repo}/resolve/main/${encodeURIComponent(file)}`;
}

/**
 * HubFiles reads the files of one repository, remembering what each file was at its first
 * read (size, ETag, Last-Modified) so that a change mid-way is noticed.
 */
export class HubFiles {
  constructor(hub, repo, { signal, onBytes } = {}) {
    this.hub = hub;
    this.repo = repo;
    this.signal = signal;
    this.onBytes = onBytes ?? (() => {});
    this.seen = new Map(); // file → {size, etag, modified}
  }

  url(file) {
    return resolveURL(this.hub, this.repo, file);
  }

  async #fetch(file, headers) {
    const url = this.url(file);
    let res;
    try {
      // no-store: a converted package is kept; the HTTP cache would hold a second copy of
      // the checkpoint's bytes.
      res = await fetch(url, { headers, cache: 'no-store', signal: this.signal });
    } catch (err) {
      if (this.signal?.aborted) throw new CogVLMError('aborted', 'conversion aborted');
      throw new CogVLMError('network', `cannot reach ${url}: ${err.message}`);
    }
    return { url, res };
  }

  /** identity notes what a response says the file is, and refuses a change from the first read. */
  #identity(file, url, res, size) {
    const now = { size, etag: res.headers.get('ETag'), modified: res.headers.get('Last-Modified') };
    const first = this.seen.get(file);
    if (!first) {
      this.seen.set(file, now);
      return;
    }
    for (const [key, what] of [
      ['size', 'size'],
      ['etag', 'ETag'],
      ['modified', 'Last-Modified'],
    ]) {
      if (first[key] != null && now[key] != null && first[key] !== now[key]) {
        throw new CogVLMError('integrity', `${url} changed while it was being read (${what} ${first[key]}, now ${now[key]}): the repository was updated; convert again`);
      }
    }
  }

  /** readFile reads a small file whole (at most limit bytes), or null when the repository has none. */
  async readFile(file, limit) {
    const { url, res } = await this.#fetch(file, {});
    if (res.status === 404) return null;
    if (!res.ok) throw new CogVLMError('network', `HTTP ${res.status} for ${url}`);
    const buffer = await readCapped(res, limit, url); // stops reading at the limit
    this.#identity(file, url, res, buffer.length);
    this.onBytes(buffer.length);
    return buffer;
  }

  /**
   * size is a large file's size, or null when the repository has none. It reads the
   * file's first 8 bytes (a safetensors header's length, which the converter reads next).
   */
  async size(file) {
    const got = await this.#range(file, 0, 8, true);
    if (got === null) return null;
    this.first8 = { file, bytes: got.bytes };
    return got.size;
  }

  /** readRange reads bytes [offset, offset+length) of a file. */
  async readRange(file, offset, length) {
    if (offset === 0 && length === 8 && this.first8?.file === file) return this.first8.bytes;
    return (await this.#range(file, offset, length, false)).bytes;
  }

  async #range(file, offset, length, missingOK) {
    const last = offset + length - 1;
    const { url, res } = await this.#fetch(file, { Range: `bytes=${offset}-${last}` });
    if (res.status === 404 && missingOK) return null;
    if (res.status === 404) throw new CogVLMError('network', `${url}: not found (HTTP 404): the repository has no ${file} any more`);
    if (res.status === 416) throw new CogVLMError('integrity', `${url}: bytes ${offset}–${last} are past its end (HTTP 416): the file is shorter than its header says`);
    if (res.status !== 206) {
      res.body?.cancel();
      throw new CogVLMError('network', res.ok ? `${url}: the host answered HTTP ${res.status} to a Range request (it must serve byte ranges)` : `HTTP ${res.status} for ${url}`);
    }
    // Content-Range ("bytes a-b/size") is read where the host exposes it to scripts (CORS).
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('Content-Range') ?? '');
    if (range && (Number(range[1]) !== offset || Number(range[2]) > last)) {
      throw new CogVLMError('integrity', `${url}: asked for bytes ${offset}–${last}, the host sent ${range[1]}–${range[2]}`);
    }
    const size = range && range[3] !== '*' ? Number(range[3]) : null;
    this.#identity(file, url, res, size);
    const bytes = new Uint8Array(length);
    let n = 0;
    try {
      await readBody(
        res,
        bytes,
        (k) => {
          n += k;
          this.onBytes(k);
        },
        () => new CogVLMError('integrity', `${url}: more than the ${length} bytes asked for at ${offset}`),
      );
    } catch (err) {
      if (err instanceof CogVLMError) throw err;
      if (this.signal?.aborted) throw new CogVLMError('aborted', 'conversion aborted');
      throw new CogVLMError('network', `reading ${url} broke off after ${n} of ${length} bytes at ${offset}: ${err.message}`);
    }
    if (n !== length) throw new CogVLMError('integrity', `${url}: ${n} of the ${length} bytes asked for at ${offset} came (truncated answer)`);
    return { bytes, size: size ?? (offset === 0 ? await this.#headSize(file) : null) };
  }

  /** headSize is the file's size from a HEAD request, for a host that hides Content-Range. */
  async #headSize(file) {
    const url = this.url(file);
    let res;
    try {
      res = await fetch(url, { method: 'HEAD', cache: 'no-store', signal: this.signal });
    } catch (err) {
      throw new CogVLMError('network', `cannot reach ${url}: ${err.message}`);
    }
    const n = Number(res.headers.get('Content-Length'));
    if (!res.ok || !Number.isSafeInteger(n) || res.headers.get('Content-Length') === null) {
      throw new CogVLMError('network', `${url}: no size (HTTP ${res.status} to HEAD, Content-Range not exposed)`);
    }
    return n;
  }
}
