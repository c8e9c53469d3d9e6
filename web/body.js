// Reading a fetch Response's body: into a buffer of known size (the package loader's shard
// downloads, the hub reader's Range answers), or whole up to a limit (a manifest, the hub's
// small files).

import { CogVLMError } from './errors.js';

/**
 * readBody streams res's body into out (a Uint8Array of the size expected), calling
 * onChunk(n) for each chunk as it arrives, and resolves to the number of bytes read. A body
 * longer than out cancels the read and throws tooLong(). Other read failures are the
 * caller's to explain: it counts the bytes that came through onChunk.
 */
export async function readBody(res, out, onChunk, tooLong) {
  const reader = res.body.getReader();
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return n;
    if (n + value.length > out.length) {
      reader.cancel();
      throw tooLong();
    }
    out.set(value, n);
    n += value.length;
    onChunk(value.length);
  }
}

/**
 * readCapped reads a response body of at most limit bytes: a larger one (a server's answer
 * that is not what we asked for) is refused as soon as it is seen to be larger.
 */
export async function readCapped(res, limit, url) {
  const tooLarge = () => new CogVLMError('bad-input', `${url}: more than the ${limit} bytes it may have`);
  if (Number(res.headers.get('Content-Length')) > limit) throw tooLarge();
  if (!res.body) return new Uint8Array(0);
  const chunks = [];
  let n = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > limit) {
      reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
