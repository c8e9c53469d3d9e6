// Unit tests of the app's modules, run in Chromium by TestUnits (unit_test.go): the test
// copies this file into the served app as /e2e/unit.js and calls run(), which returns the
// number of cases and one line per failure. Each case throws to fail.

import { CogVLMError, asCogVLMError, fromWire, toWire } from '../errors.js';
import { bytes, duration, milliseconds, tokens, tokensPerSecond } from '../format.js';
import { imageFile, reencode, sniffFormat } from '../image.js';
import { FolderPackage, RemotePackage, ShardPipeline, fileNameProblem, maxTokenizerBytes, parseManifest, readCapped } from '../loader.js';
import { PackageStore, convertedManifestURL, deleteStoredPackage, isConverted, packageName, quotaError, sha256Hex, verify } from '../store.js';
import { HubFiles, repoProblem, resolveURL } from '../hub.js';
import { checkLimits } from '../convert.js';

const cases = [];
const test = (name, fn) => cases.push({ name, fn });

function eq(got, want, what = 'value') {
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

/** fails checks that fn throws (or rejects) a CogVLMError with code whose message has every part. */
async function fails(fn, code, ...parts) {
  let err = null;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof CogVLMError)) throw new Error(`want a CogVLMError ${code}, got ${err}`);
  if (err.code !== code) throw new Error(`code ${err.code}, want ${code} (${err.message})`);
  for (const p of parts) if (!err.message.includes(p)) throw new Error(`message ${JSON.stringify(err.message)} lacks ${JSON.stringify(p)}`);
}

// ---- format.js ----

for (const [n, want] of [
  [0, '0 B'],
  [999, '999 B'],
  [1000, '1.00 kB'],
  [6475987, '6.48 MB'],
  [10.24e9, '10.2 GB'],
  [123.4e9, '123 GB'],
  [NaN, '? B'],
]) {
  test(`bytes(${n})`, () => eq(bytes(n), want));
}
for (const [s, want] of [
  [0.2, '1 s'],
  [59, '59 s'],
  [90, '2 min'],
  [4800, '1 h 20 min'],
  [Infinity, '?'],
  [-1, '?'],
]) {
  test(`duration(${s})`, () => eq(duration(s), want));
}
for (const [args, want] of [
  [[10, 2000], '5.0 tokens/s'],
  [[0, 100], '–'],
  [[5, 0], '–'],
]) {
  test(`tokensPerSecond(${args})`, () => eq(tokensPerSecond(...args), want));
}
test('tokens', () => eq([tokens(1), tokens(2), tokens(0)], ['1 token', '2 tokens', '0 tokens']));
test('milliseconds', () => eq([milliseconds(83.4), milliseconds(1234), milliseconds(NaN)], ['83 ms', '1.2 s', '–']));

// ---- errors.js ----

test('asCogVLMError keeps an engine code, types the rest', () => {
  const engineErr = Object.assign(new Error('GPU out of memory: 8589934592 bytes'), { code: 'out-of-memory' });
  eq(asCogVLMError(engineErr).code, 'out-of-memory', 'engine error');
  eq(asCogVLMError(new DOMException('stopped', 'AbortError')).code, 'aborted', 'AbortError');
  eq(asCogVLMError(new TypeError('x'), 'network').code, 'network', 'fallback');
  eq(asCogVLMError(Object.assign(new Error('x'), { code: 'no-such-code' })).code, 'internal', 'unknown code');
});
test('errors cross postMessage with their code', () => {
  const back = fromWire(structuredClone(toWire(new CogVLMError('context-length', 'prompt of 2000 tokens + 256 new tokens exceeds 2048'))));
  eq([back instanceof CogVLMError, back.code, back.message], [true, 'context-length', 'prompt of 2000 tokens + 256 new tokens exceeds 2048']);
});

// ---- store.js ----

const abc = new TextEncoder().encode('abc').buffer;
const abcSHA = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
test('sha256Hex', async () => eq(await sha256Hex(abc), abcSHA));
for (const [name, entry, want] of [
  ['matching bytes', { file: 'a.bin', size: 3, sha256: abcSHA }, null],
  ['a short file', { file: 'a.bin', size: 4, sha256: abcSHA }, '3 bytes, the manifest says 4'],
  ['other bytes', { file: 'a.bin', size: 3, sha256: '0'.repeat(64) }, `sha256 ${abcSHA}, the manifest says ${'0'.repeat(64)}`],
]) {
  test(`verify: ${name}`, async () => eq(await verify(entry, abc), want));
}
for (const [url, want] of [
  ['/models/demo/manifest.json', 'demo'],
  ['http://127.0.0.1:8080/models/cogvlm%20chat/manifest.json', 'cogvlm chat'],
]) {
  test(`packageName(${url})`, () => eq(packageName(url), want));
}
test('PackageStore records the SHA-256 of the committed manifest and notices a changed one', async () => {
  const url = new URL('/models/unit-store/manifest.json', location.href).href;
  await deleteStoredPackage(url);
  try {
    const store = await PackageStore.open(`${url}#sha256=${abcSHA}`);
    eq(store.manifestURL, url, 'stored under the URL without its fragment');
    const m = { tokenizer: { file: 'tokenizer.json', size: 3, sha256: abcSHA }, shards: [] };
    await store.write(m.tokenizer, abc);
    await store.commit(new Uint8Array(abc), abcSHA, m);
    const got = await store.committed();
    eq([new TextDecoder().decode(got.bytes), got.sha256], ['abc', abcSHA], 'committed');
    eq([...(await store.keys())].sort(), [url, `${new URL('tokenizer.json', url).href}?sha256=${abcSHA}`], 'keys after the commit');
    const res = await store.cache.match(url);
    await store.cache.put(url, new Response('abd', { headers: res.headers }));
    const changed = await store.committed();
    if (!changed.problem?.includes(`${abcSHA} was recorded`)) throw new Error(`a changed manifest reads as ${JSON.stringify(changed)}`);
  } finally {
    await deleteStoredPackage(url);
  }
});
test('quotaError names the bytes needed, the quota and the use', async () => {
  const real = StorageManager.prototype.estimate;
  StorageManager.prototype.estimate = async () => ({ quota: 5e9, usage: 4.9e9 });
  try {
    const err = await quotaError(10.24e9);
    eq(err.code, 'limits', 'code');
    for (const part of ['10.2 GB more are needed', 'may use 5.00 GB', 'uses 4.90 GB', '100 MB free']) {
      if (!err.message.includes(part)) throw new Error(`${JSON.stringify(err.message)} lacks ${JSON.stringify(part)}`);
    }
  } finally {
    StorageManager.prototype.estimate = real;
  }
});

// ---- loader.js ----

const sha = 'a'.repeat(64);
const manifest = {
  format: 'cogvlm-web-package',
  format_version: 1,
  tokenizer: { file: 'tokenizer.json', size: 10, sha256: sha },
  shards: [{ file: 'shard-00000.bin', size: 100, sha256: sha }],
};
const edited = (edit) => {
  const m = structuredClone(manifest);
  edit(m);
  return JSON.stringify(m);
};
test('parseManifest: a valid manifest', () => eq(parseManifest(JSON.stringify(manifest), 'm').shards.length, 1));
for (const [name, text, part] of [
  ['not JSON', '{', 'not JSON'],
  ['another format', edited((m) => (m.format = 'gguf')), 'format is "gguf"'],
  ['a newer version', edited((m) => (m.format_version = 2)), 'format_version is 2'],
  ['no shards', edited((m) => (m.shards = [])), 'shards is missing or empty'],
  ['a path outside the folder', edited((m) => (m.shards[0].file = '../x.bin')), 'shards[0].file "../x.bin" is not a plain file name inside the package: it has the character "/"'],
  ['a backslash path', edited((m) => (m.shards[0].file = 'a\\..\\..\\index.html')), 'it has the character "\\\\"'],
  ['a shard named .', edited((m) => (m.shards[0].file = '.')), 'shards[0].file "." is not a plain file name inside the package: it starts with a dot'],
  ['the manifest as a shard', edited((m) => (m.shards[0].file = 'Manifest.JSON')), 'is the name of the manifest itself'],
  ['a file name that is no string', edited((m) => (m.shards[0].file = 7)), 'shards[0].file 7 is not a plain file name inside the package: it is number, not a string'],
  ['a duplicate shard', edited((m) => m.shards.push({ ...m.shards[0] })), 'shards[1].file "shard-00000.bin" is also shards[0]'],
  ['a duplicate ignoring case', edited((m) => (m.shards[0].file = 'TOKENIZER.json')), 'shards[0].file "TOKENIZER.json" is also tokenizer (names must differ, ignoring case)'],
  ['a huge tokenizer', edited((m) => (m.tokenizer.size = 1e15)), `tokenizer.size is 1000000000000000, more than the ${maxTokenizerBytes} bytes`],
  ['a negative size', edited((m) => (m.shards[0].size = -1)), 'shards[0].size is -1'],
  ['an upper-case hash', edited((m) => (m.shards[0].sha256 = 'A'.repeat(64))), 'shards[0].sha256'],
  ['no tokenizer', edited((m) => delete m.tokenizer), 'tokenizer.file undefined is not a plain file name inside the package: it is undefined, not a string'],
]) {
  test(`parseManifest: ${name}`, () => fails(() => parseManifest(text, 'models/x/manifest.json'), 'bad-input', 'models/x/manifest.json: ', part));
}
// The table Go's format.CheckFileName is tested on (model/format/testdata/file_names.json).
const fileNames = (await (await fetch(new URL('file_names.json', import.meta.url))).json()).cases;
for (const { name, want } of fileNames) {
  test(`fileNameProblem(${JSON.stringify(name)}) → ${want}`, () => {
    const problem = fileNameProblem(name);
    if (want === 'ok' ? problem !== null : !problem?.includes(want)) throw new Error(`got ${JSON.stringify(problem)}`);
  });
}
test('the file name table is there', () => {
  if (fileNames.length < 30) throw new Error(`${fileNames.length} cases`);
});
test('RemotePackage takes a sha256 pin from the fragment and stores under the bare URL', () => {
  const pkg = new RemotePackage(`/models/demo/manifest.json#sha256=${sha}`);
  eq([pkg.pin, pkg.manifestURL], [sha, new URL('/models/demo/manifest.json', location.href).href]);
});
test('RemotePackage refuses another fragment', () => fails(() => new RemotePackage('/models/demo/manifest.json#x'), 'bad-input', '#sha256='));
test('readCapped reads a body up to its limit', async () => eq([...(await readCapped(new Response('abc'), 3, 'u'))], [97, 98, 99]));
test('readCapped refuses a larger body', () => fails(() => readCapped(new Response(new Blob(['abcd']).stream()), 3, 'models/x/manifest.json'), 'bad-input', 'models/x/manifest.json: more than the 3 bytes'));
test('checkLimits refuses a shard larger than a buffer, with the numbers', () =>
  fails(
    () => checkLimits({ shards: [{ file: 'shard-00001.bin', size: 300 << 20 }] }, { maxStorageBufferBindingSize: 128 << 20, maxBufferSize: 256 << 20 }),
    'limits',
    'shard-00001.bin has 314572800 bytes',
    'maxBufferSize of 268435456 bytes',
  ));
// CogVLM-17B's q8 embedding: a 139 MB shard whose parts (131 MB of qweight, 8 MB of
// scales) each fit WebGPU's default 128 MiB binding
const embedding = {
  shards: [{ file: 'shard-00000.bin', size: 139264000 }],
  tensors: [{ name: 'model.embed_tokens.weight', length: 131072000, scales_length: 8192000 }],
};
test('checkLimits accepts a shard larger than a binding whose parts fit', () =>
  checkLimits(embedding, { maxStorageBufferBindingSize: 128 << 20, maxBufferSize: 256 << 20 }));
test('checkLimits refuses a part larger than a binding, with the numbers', () =>
  fails(
    () => checkLimits(embedding, { maxStorageBufferBindingSize: 64 << 20, maxBufferSize: 256 << 20 }),
    'limits',
    'model.embed_tokens.weight has a part of 131072000 bytes',
    'maxStorageBufferBindingSize of 67108864 bytes',
  ));
test('checkLimits accepts shards that fit', () => checkLimits(manifest, { maxStorageBufferBindingSize: 100, maxBufferSize: 100 }));

const shardEntries = Array.from({ length: 7 }, (_, i) => ({ file: `s${i}` }));
test('ShardPipeline keeps at most its window ahead and hands shards out in order', async () => {
  const started = [];
  const p = new ShardPipeline(shardEntries, async (e) => (started.push(e.file), `${e.file} bytes`), 3);
  eq(started, [], 'started before the engine asks');
  for (const [i, e] of shardEntries.entries()) {
    eq(await p.take(e.file), `${e.file} bytes`, `take ${e.file}`);
    eq(started.length, Math.min(7, i + 4), `started after taking ${e.file}`);
  }
});
test('ShardPipeline stops starting shards after a failure and reports it', async () => {
  const started = [];
  const p = new ShardPipeline(
    shardEntries,
    (e) => {
      started.push(e.file);
      return e.file === 's1' ? Promise.reject(new CogVLMError('network', 'cannot download s1')) : Promise.resolve(e.file);
    },
    2,
  );
  eq(await p.take('s0'), 's0', 'take s0');
  eq(started, ['s0', 's1'], 'started');
  await fails(() => p.take('s1'), 'network', 'cannot download s1');
  await fails(() => p.take('s2'), 'network', 'cannot download s1');
  eq(started, ['s0', 's1'], 'started after the failure');
});
test('ShardPipeline refuses a shard the manifest does not list', () => fails(() => new ShardPipeline(shardEntries, async () => 0, 2).take('s9'), 'bad-input', 's9'));

// A package folder from disk: the same three files as Files (a picker without relative
// paths) and in a real directory handle (the origin private file system).
async function folderFiles() {
  const shard = new TextEncoder().encode('shard bytes');
  const tok = new TextEncoder().encode('{"model":{}}');
  const m = {
    format: 'cogvlm-web-package',
    format_version: 1,
    tokenizer: { file: 'tokenizer.json', size: tok.length, sha256: await sha256Hex(tok) },
    shards: [{ file: 'shard-00000.bin', size: shard.length, sha256: await sha256Hex(shard) }],
  };
  return { m, files: [new File([JSON.stringify(m)], 'manifest.json'), new File([tok], 'tokenizer.json'), new File([shard], 'shard-00000.bin')] };
}
const quiet = { progress: { done() {} } };
async function readsBack(pkg) {
  const { manifest } = await pkg.open();
  eq(manifest.shards[0].file, 'shard-00000.bin', 'manifest');
  eq(new TextDecoder().decode(await pkg.obtain(manifest.shards[0], quiet)), 'shard bytes', 'shard');
  if (!pkg.manifestURL.endsWith('/manifest.json')) throw new Error(`manifestURL ${pkg.manifestURL}`);
}
test('FolderPackage reads and verifies Files', async () => readsBack(new FolderPackage((await folderFiles()).files)));
test('FolderPackage reads and verifies a directory handle', async () => {
  const root = await navigator.storage.getDirectory();
  await root.removeEntry('unit-package', { recursive: true }).catch(() => {});
  const dir = await root.getDirectoryHandle('unit-package', { create: true });
  for (const f of (await folderFiles()).files) {
    const w = await (await dir.getFileHandle(f.name, { create: true })).createWritable();
    await w.write(f);
    await w.close();
  }
  try {
    await readsBack(new FolderPackage(dir));
  } finally {
    await root.removeEntry('unit-package', { recursive: true });
  }
});
test('FolderPackage names a missing shard', async () => {
  const { m, files } = await folderFiles();
  const pkg = new FolderPackage(files.filter((f) => f.name !== 'shard-00000.bin'));
  await pkg.open();
  await fails(() => pkg.obtain(m.shards[0], quiet), 'bad-input', 'has no shard-00000.bin');
});
test('FolderPackage refuses a damaged shard', async () => {
  const { m, files } = await folderFiles();
  const pkg = new FolderPackage([...files.slice(0, 2), new File(['shard bytez'], 'shard-00000.bin')]);
  await pkg.open();
  await fails(() => pkg.obtain(m.shards[0], quiet), 'integrity', 'shard-00000.bin: sha256');
});
test('FolderPackage wants a manifest', async () => fails(() => new FolderPackage([new File(['x'], 'notes.txt')]).open(), 'bad-input', 'no manifest.json'));

// ---- image.js ----

async function canvasImage(width, height, type = 'image/png') {
  const c = new OffscreenCanvas(width, height);
  const g = c.getContext('2d');
  g.fillStyle = '#3b5bdb';
  g.fillRect(0, 0, width, height);
  g.fillStyle = '#f08c00';
  g.fillRect(0, 0, width >> 1, height >> 1);
  return c.convertToBlob({ type });
}
async function size(bytes) {
  const bitmap = await createImageBitmap(new Blob([bytes]));
  return [bitmap.width, bitmap.height];
}
for (const [head, want] of [
  [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'png'],
  [[0xff, 0xd8, 0xff, 0xe0], 'jpeg'],
  [[0x47, 0x49, 0x46, 0x38, 0x39, 0x61], 'gif'],
  [[0x52, 0x49, 0x46, 0x46, 1, 2, 3, 4, 0x57, 0x45, 0x42, 0x50], 'webp'],
  [[0x52, 0x49, 0x46, 0x46, 1, 2, 3, 4, 0x57, 0x41, 0x56, 0x45], null], // RIFF WAVE
  [[...new TextEncoder().encode('hello, world')], null],
]) {
  test(`sniffFormat → ${want}`, () => eq(sniffFormat(new Uint8Array(head)), want));
}
const maxSide = 2048; // the engine's maxImageSide (its load summary's)
// A 2×1 24-bit BMP (a format Go does not read): blue, then red.
const bmp = new Uint8Array([
  0x42, 0x4d, 62, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 24, 0, 0, 0, 0, 0, 8, 0, 0, 0,
  0x13, 0x0b, 0, 0, 0x13, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0,
]);
test('imageFile passes a small PNG through untouched, undecoded', async () => {
  const png = await canvasImage(40, 30);
  const out = await imageFile(png, maxSide);
  eq([...out.bytes], [...new Uint8Array(await png.arrayBuffer())]);
  eq([out.width, out.height], [null, null], 'size (the engine reads it)');
});
test('imageFile passes a small JPEG through untouched', async () => {
  const jpg = await canvasImage(40, 30, 'image/jpeg');
  eq([...(await imageFile(jpg, maxSide)).bytes], [...new Uint8Array(await jpg.arrayBuffer())]);
});
test('imageFile passes a large PNG through too: the engine refuses it from its header', async () => {
  const png = await canvasImage(3000, 1000);
  eq((await imageFile(png, maxSide)).bytes.length, png.size);
});
test(`reencode downscales a large image to ${maxSide} px as PNG, with its size as given`, async () => {
  const out = await reencode(await canvasImage(3000, 1000), maxSide);
  eq(sniffFormat(out.bytes), 'png', 'format');
  eq(await size(out.bytes), [maxSide, 683], 'size');
  eq([out.width, out.height], [3000, 1000], 'the size as given');
});
test('imageFile re-encodes a format Go does not read (BMP) as PNG', async () => {
  const out = await imageFile(new File([bmp], 'two.bmp', { type: 'image/bmp' }), maxSide);
  eq([sniffFormat(out.bytes), ...(await size(out.bytes)), out.width, out.height], ['png', 2, 1, 2, 1]);
});
test('imageFile encodes an ImageBitmap as PNG', async () => {
  const out = await imageFile(await createImageBitmap(await canvasImage(64, 32)), maxSide);
  eq([sniffFormat(out.bytes), ...(await size(out.bytes)), out.width, out.height], ['png', 64, 32, 64, 32]);
});
test('imageFile refuses a text file, naming it', () => fails(() => imageFile(new File(['not a picture'], 'notes.txt', { type: 'text/plain' }), maxSide), 'bad-input', '"notes.txt" (text/plain, 13 B)', 'not an image'));
test('imageFile refuses an empty file', () => fails(() => imageFile(new File([], 'empty.png', { type: 'image/png' }), maxSide), 'bad-input', 'is empty'));
test('imageFile refuses what is no Blob', () => fails(() => imageFile('photo.png', maxSide), 'bad-input', 'Blob, File, ImageBitmap or null'));
test('imageFile of null is null', async () => eq(await imageFile(null, maxSide), null));

// ---- hub.js, the converter's reads ----

for (const [repo, ok] of [
  ['THUDM/cogvlm-chat-hf', true],
  ['lmsys/vicuna-7b-v1.5', true],
  ['THUDM', false],
  ['THUDM/a/b', false],
  ['../x', false],
  ['a/..', false],
  ['a/b?c', false],
  ['a/b#c', false],
  ['', false],
]) {
  test(`repoProblem(${JSON.stringify(repo)})`, () => eq(repoProblem(repo) === null, ok));
}
test('resolveURL', () => eq(resolveURL('https://huggingface.co/', 'THUDM/cogvlm-chat-hf', 'model-00001-of-00008.safetensors'), 'https://huggingface.co/THUDM/cogvlm-chat-hf/resolve/main/model-00001-of-00008.safetensors'));
test('convertedManifestURL and isConverted', () => {
  const url = convertedManifestURL('cogvlm-chat-hf');
  eq([url, isConverted(url), isConverted(new URL('/models/demo/manifest.json', location.href).href)], [`${location.origin}/converted/cogvlm-chat-hf/manifest.json`, true, false]);
});

/** withFetch runs fn with fetch answering every request with answer(url, init). */
async function withFetch(answer, fn) {
  const real = globalThis.fetch;
  globalThis.fetch = async (url, init) => answer(url, init);
  try {
    return await fn();
  } finally {
    globalThis.fetch = real;
  }
}
const ranged = (body, headers = {}) => new Response(body, { status: 206, headers });
for (const [name, answer, code, ...parts] of [
  ['a host that ignores Range', () => new Response(new Uint8Array(100)), 'network', 'HTTP 200 to a Range request'],
  ['a 404 mid-way', () => new Response('Entry not found', { status: 404 }), 'network', 'not found (HTTP 404)', 'no f.safetensors'],
  ['bytes past the end', () => new Response('', { status: 416 }), 'integrity', 'past its end'],
  ['a short answer', () => ranged(new Uint8Array(10)), 'integrity', '10 of the 16 bytes', 'truncated'],
  ['a long answer', () => ranged(new Uint8Array(20)), 'integrity', 'more than the 16 bytes'],
  ['another range', () => ranged(new Uint8Array(16), { 'Content-Range': 'bytes 0-15/100' }), 'integrity', 'asked for bytes 32–47, the host sent 0–15'],
]) {
  test(`HubFiles.readRange refuses ${name}`, () =>
    withFetch(answer, () => fails(() => new HubFiles('https://hub.example', 'o/n').readRange('f.safetensors', 32, 16), code, 'https://hub.example/o/n/resolve/main/f.safetensors', ...parts)));
}
test('HubFiles.readRange sends one Range and notices a changed ETag', async () => {
  const sent = [];
  let etag = '"a"';
  await withFetch(
    (url, init) => {
      sent.push(init.headers.Range);
      return ranged(new Uint8Array(4), { ETag: etag, 'Content-Range': 'bytes 8-11/64' });
    },
    async () => {
      const files = new HubFiles('https://hub.example', 'o/n');
      eq((await files.readRange('f', 8, 4)).length, 4);
      etag = '"b"';
      await fails(() => files.readRange('f', 8, 4), 'integrity', 'changed while it was being read', 'ETag "a", now "b"');
    },
  );
  eq(sent, ['bytes=8-11', 'bytes=8-11']);
});
test('HubFiles.size: a missing file is null, else Content-Range\'s total', async () => {
  await withFetch(
    (url) => (url.endsWith('/gone') ? new Response('', { status: 404 }) : ranged(new Uint8Array(8), { 'Content-Range': 'bytes 0-7/12345' })),
    async () => {
      const files = new HubFiles('https://hub.example', 'o/n');
      eq([await files.size('gone'), await files.size('here')], [null, 12345]);
    },
  );
});

export async function run() {
  const failures = [];
  for (const c of cases) {
    try {
      await c.fn();
    } catch (err) {
      failures.push(`${c.name}: ${err.message}`);
    }
  }
  return { count: cases.length, failures };
}
