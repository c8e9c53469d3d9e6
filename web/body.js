// Reading a fetch Response's body into a buffer of known size: the package loader's shard
// downloads and the hub reader's Range answers both stream bytes this way.

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
