// Our q4 kernels in the peer harness (/work/shared/peer, `run.mjs --extra`), timed on the
// same weights, activations and device kind as onnxruntime-web's MatMulNBits.
//
// It runs the exact WGSL the engine's MatMulQ4 picks (wasm/kernels/matmul.go), fetched
// from this module's folder, with the same override constants, Params layout and
// bindings: for M ≤ 4 (decode) shaders/matvec_q4_subgroups.wgsl where the adapter has
// `subgroups`, else shaders/matvec_q4.wgsl; for M > 4 (prefill) shaders/matmul_q4_rows.wgsl
// up to 16 rows and on a CPU adapter (SwiftShader), else shaders/matmul_q4.wgsl.
// Run it through bench/run-peer.sh, which writes those modules (each op file with the
// shared files shaders.Source joins onto it) next to this one.
//
// Weights: ORT's B is uint8 [N, K/32, 16] with the low nibble holding the even k and zero
// point 8. Read as little-endian u32 that is our qweight [N][K/8] (nibble i of word w is
// k = 8w + i) byte for byte; checkLayout verifies this on the data rather than assuming
// it, and B is then uploaded unchanged. ORT's scales are f32 [N·K/32]; ours are f16
// [N][K/32], two per u32, so they are rounded to f16 here. That rounding moves outputs by
// about 3e-4 of max|y|, above the harness's tolerance of 1e-4: its check flags our y. We
// return y as it is, and add in `notes` the error against a reference that uses the same
// f16 scales, which is the kernel's own error.

export const name = 'cogvlm-web q4';

// The engine's choices (wasm/kernels/matmul.go): matvec for M ≤ matVecMaxRows, else tiled.
const matVecMaxRows = 4;
const tile = 64; // matmul_q4.wgsl's TILE_M and TILE_N
const rowsKernelRows = 16, rowsKernelThreads = 64;

// matVecShape is the engine's rule for the matvec's override constants: threads per row
// for rows of `chunks` 32-weight blocks (64 unless the rows are short), the rest of the
// 256 invocations on more rows. Every CogVLM shape gets ROWS = 4, THREADS_PER_ROW = 64.
function matVecShape(chunks) {
  let threadsPerRow = 64;
  while (threadsPerRow > 4 && threadsPerRow >= chunks) threadsPerRow /= 2;
  return { ROWS: 256 / threadsPerRow, THREADS_PER_ROW: threadsPerRow };
}

let device = null, noBias = null, cpuAdapter = false, hasTimestamps = false, hasSubgroups = false, subgroupLanes = 64;
const pipelines = new Map(); // file and override constants (JSON) -> pipeline
let weights = null; // { B, qweight, scales, rounded, notes } for the (K, N) in use
const gpuErrors = []; // uncaptured errors: a dispatch that failed validation did not run

const modules = new Map(); // file -> shader module
async function pipeline(file, constants) {
  const key = file + JSON.stringify(constants);
  if (!pipelines.has(key)) {
    if (!modules.has(file)) modules.set(file, await compile(file));
    const compute = { module: modules.get(file), entryPoint: 'main', constants };
    pipelines.set(key, await device.createComputePipelineAsync({ label: file, layout: 'auto', compute }));
  }
  return pipelines.get(key);
}
async function compile(file) {
  const res = await fetch(new URL(`./${file}`, import.meta.url));
  if (!res.ok) throw new Error(`${file}: HTTP ${res.status} (run through bench/run-peer.sh, which writes it here)`);
  const code = await res.text();
  const module = device.createShaderModule({ label: file, code });
  const errors = (await module.getCompilationInfo()).messages.filter(m => m.type === 'error');
  if (errors.length) throw new Error(errors.map(m => `${file}:${m.lineNum}:${m.linePos}: ${m.message}`).join('; '));
  return module;
}

export async function setup({ adapter }) {
  hasTimestamps = adapter.features.has('timestamp-query');
  hasSubgroups = adapter.features.has('subgroups');
  // As gpu.AdapterInfo.CPU: a fallback adapter or SwiftShader.
  cpuAdapter = !!adapter.info?.isFallbackAdapter || /swiftshader/i.test(adapter.info?.architecture ?? '');
  // As the engine's subgroupMatVec: one subgroup per row, 64 lanes where the size is unknown.
  const sg = adapter.info?.subgroupMaxSize;
  subgroupLanes = sg >= 4 && sg <= 64 && (sg & (sg - 1)) === 0 ? sg : 64;
  device = await adapter.requestDevice({
    requiredFeatures: [...(hasTimestamps ? ['timestamp-query'] : []), ...(hasSubgroups ? ['subgroups'] : [])],
    requiredLimits: { maxBufferSize: adapter.limits.maxBufferSize, maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize },
  });
  device.addEventListener('uncapturederror', e => gpuErrors.push(String(e.error?.message || e.error)));
  await pipeline('matmul_q4.wgsl', { GROUP_SIZE: 32 }); // a broken kernel fails here, once
  // The bias slot is always bound; has_bias = 0 keeps it unread (as the engine's noBias).
  noBias = device.createBuffer({ label: 'no-bias', size: 16, usage: GPUBufferUsage.STORAGE });
}

function upload(label, data, usage) {
  const buf = device.createBuffer({ label, size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: usage | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buf, 0, data);
  return buf;
}

// checkLayout compares, for every k of a few rows, the code ORT reads from B (byte
// (n·K/32 + k/32)·16 + (k%32)/2, low nibble for even k) with the code our kernels read from
// the same bytes as little-endian u32 (word n·K/8 + k/8, nibble k%8).
function checkLayout(B, K, N) {
  if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error('big-endian host: B is not our u32 layout as it is');
  if (B.byteOffset % 4 || B.byteLength !== N * K / 2) throw new Error(`B: ${B.byteLength} bytes at offset ${B.byteOffset}, want ${N * K / 2} at a multiple of 4`);
  const words = new Uint32Array(B.buffer, B.byteOffset, B.byteLength / 4);
  const rows = [...new Set([0, 1, N >> 1, N - 1])].filter(n => n < N);
  for (const n of rows) {
    for (let k = 0; k < K; k++) {
      const ort = (B[(n * K / 32 + (k >> 5)) * 16 + ((k & 31) >> 1)] >> ((k & 1) * 4)) & 15;
      const ours = (words[n * K / 8 + (k >> 3)] >>> ((k & 7) * 4)) & 15;
      if (ort !== ours) throw new Error(`B layout check: n=${n} k=${k}: ORT code ${ort}, our code ${ours}`);
    }
  }
  return `B is our qweight byte for byte (checked all k of rows ${rows.join(', ')})`;
}

// f16 bits of x, rounded to nearest even (as quant.F16FromFloat32 and WGSL's pack2x16float).
const f32 = new Float32Array(1), f32Bits = new Uint32Array(f32.buffer);
function f16Bits(x) {
  f32[0] = x;
  const b = f32Bits[0], sign = (b >>> 16) & 0x8000, exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  let h, rem, half;
  if (e <= 0) { // f16 subnormal: units of 2^-24
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    h = mant >>> shift; rem = mant & ((1 << shift) - 1); half = 1 << (shift - 1);
  } else {
    h = (e << 10) | (mant >>> 13); rem = mant & 0x1fff; half = 0x1000;
  }
  if (rem > half || (rem === half && (h & 1))) h++; // a carry into the exponent is right
  return sign | h;
}
function f16Value(h) {
  const e = (h >> 10) & 0x1f, m = h & 0x3ff, s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// toF16Pairs packs scales as our f16 [N][K/32], two per u32 (element 2i in the low half,
// which unpack2x16float returns as .x), and returns the rounded values for the reference.
function toF16Pairs(scales) {
  const packed = new Uint32Array(Math.ceil(scales.length / 2)), rounded = new Float32Array(scales.length);
  let worst = 0;
  for (let i = 0; i < scales.length; i++) {
    const h = f16Bits(scales[i]);
    packed[i >> 1] |= h << (16 * (i & 1));
    rounded[i] = f16Value(h);
    if (scales[i] !== 0) worst = Math.max(worst, Math.abs(rounded[i] - scales[i]) / Math.abs(scales[i]));
  }
  return { packed, rounded, worst };
}

function useWeights(K, N, B, scales) {
  if (weights?.B === B) return weights;
  if (weights) { weights.qweight.destroy(); weights.scales.destroy(); }
  const layout = checkLayout(B, K, N);
  const s = toF16Pairs(scales);
  weights = {
    B, rounded: s.rounded,
    qweight: upload('qweight', B, GPUBufferUsage.STORAGE),
    scales: upload('scales', s.packed, GPUBufferUsage.STORAGE),
    notes: [layout, `scales rounded to f16: max relative change ${s.worst.toExponential(2)}`],
  };
  return weights;
}

// referenceRows is y for the given rows in float64 with the f16-rounded scales: what our
// kernel computes, up to float32 summation order.
function referenceRows(A, K, N, rows, B, scales) {
  const out = new Float64Array(rows.length * N), w = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < K / 32; b++) {
      const s = scales[n * K / 32 + b], base = (n * K / 32 + b) * 16;
      for (let j = 0; j < 16; j++) { const v = B[base + j]; w[b * 32 + 2 * j] = ((v & 15) - 8) * s; w[b * 32 + 2 * j + 1] = ((v >> 4) - 8) * s; }
    }
    rows.forEach((r, i) => { let acc = 0; for (let k = 0; k < K; k++) acc += A[r * K + k] * w[k]; out[i * N + n] = acc; });
  }
  return out;
}

function encode(pipe, bind, grid, timestamps) {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass(timestamps ? { timestampWrites: { querySet: timestamps.qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
  pass.setPipeline(pipe); pass.setBindGroup(0, bind); pass.dispatchWorkgroups(...grid); pass.end();
  if (timestamps) { enc.resolveQuerySet(timestamps.qs, 0, 2, timestamps.resolve, 0); enc.copyBufferToBuffer(timestamps.resolve, 0, timestamps.read, 0, 16); }
  return enc.finish();
}

// gpuMs times one dispatch with pass timestamps, in runs of its own (3 for M = 1, 1 for
// M > 1, as the harness does for the peer).
async function gpuMs(pipe, bind, grid, runs) {
  const ts = {
    qs: device.createQuerySet({ type: 'timestamp', count: 2 }),
    resolve: device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }),
    read: device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
  };
  const ms = [];
  for (let i = 0; i < runs; i++) {
    device.queue.submit([encode(pipe, bind, grid, ts)]);
    await ts.read.mapAsync(GPUMapMode.READ);
    const [t0, t1] = new BigUint64Array(ts.read.getMappedRange().slice(0));
    ts.read.unmap();
    ms.push(Number(t1 - t0) / 1e6);
  }
  ts.qs.destroy(); ts.resolve.destroy(); ts.read.destroy();
  ms.sort((a, b) => a - b);
  return ms.length % 2 ? ms[ms.length >> 1] : (ms[ms.length / 2 - 1] + ms[ms.length / 2]) / 2;
}

export async function matmulNBits({ K, N, M, B, scales, A, blockSize, bits, warmup, iters, timeit }) {
  if (blockSize !== 32 || bits !== 4 || K % 32) throw new Error(`unsupported: bits=${bits} block_size=${blockSize} K=${K} (want 4, 32, K a multiple of 32)`);
  const w = useWeights(K, N, B, scales);
  const x = upload('x', A, GPUBufferUsage.STORAGE);
  const out = device.createBuffer({ label: 'out', size: M * N * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  // common_linear.wgsl's Params: m, n, k, has_bias, x_start, out_start (whole buffers: 0).
  const params = upload('params', new Uint32Array([M, N, K, 0, 0, 0]), GPUBufferUsage.UNIFORM);
  // The kernel, constants, grid and bindings as the engine's MatMulQ4 picks them: Params,
  // x, qweight, scales, bias, out, and for matvec_q4.wgsl qweight again as single words
  // (its path for K % 32 ≠ 0).
  let file, grid, constants, buffers = [params, x, w.qweight, w.scales, noBias, out];
  if (M <= matVecMaxRows && hasSubgroups) {
    file = 'matvec_q4_subgroups.wgsl';
    const rows = Math.min(4, Math.max(1, 128 / subgroupLanes)); // as the engine's subgroupMatVec
    constants = { ROWS: rows, LANES: subgroupLanes, GROUP_SIZE: 32 };
    grid = [Math.ceil(N / rows), M, 1];
  } else if (M <= matVecMaxRows) {
    file = 'matvec_q4.wgsl';
    constants = { ...matVecShape(K / 32), GROUP_SIZE: 32 };
    grid = [Math.ceil(N / constants.ROWS), M, 1];
    buffers.push(w.qweight);
  } else if (M <= rowsKernelRows || K % 16 || cpuAdapter) {
    file = 'matmul_q4_rows.wgsl';
    constants = { GROUP_SIZE: 32, THREADS: rowsKernelThreads };
    grid = [Math.ceil(M / rowsKernelRows), Math.ceil(N / (4 * rowsKernelThreads)), 1];
  } else {
    file = 'matmul_q4.wgsl';
    constants = { GROUP_SIZE: 32 };
    grid = [Math.ceil(N / tile), Math.ceil(M / tile), 1];
  }
  const pipe = await pipeline(file, constants);
  const bind = device.createBindGroup({
    layout: pipe.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const t = await timeit(() => device.queue.submit([encode(pipe, bind, grid, null)]), device, { warmup, iters });
  const gpuMedianMs = hasTimestamps ? await gpuMs(pipe, bind, grid, M === 1 ? 3 : 1) : undefined;

  const read = device.createBuffer({ size: M * N * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(out, 0, read, 0, M * N * 4);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const y = new Float32Array(read.getMappedRange().slice(0));
  read.unmap();
  for (const b of [x, out, params, read]) b.destroy();
  if (gpuErrors.length) throw new Error(`WebGPU errors, so the kernel did not run: ${gpuErrors.splice(0).join('; ')}`);

  // The kernel's own error: against the same f16 scales, on the rows the harness checks.
  const rows = M === 1 ? [0] : [...new Set([0, 1, M >> 1, M - 1])];
  const ref = referenceRows(A, K, N, rows, B, w.rounded);
  let diff = 0, refMax = 0;
  rows.forEach((r, i) => { for (let n = 0; n < N; n++) { diff = Math.max(diff, Math.abs(y[r * N + n] - ref[i * N + n])); refMax = Math.max(refMax, Math.abs(ref[i * N + n])); } });
  const notes = [...w.notes, `${file} ${JSON.stringify(constants)} grid ${grid.join('×')}`,
    `max|diff| against a float64 reference with the same f16 scales: ${diff.toExponential(2)} (max|ref| ${refMax.toFixed(3)}, rows ${rows.join(', ')})`];
  console.log(`[bench] extra ${K}x${N} M=${M}: ${notes.slice(2).join('; ')}`);
  return { medianMs: t.medianMs, gpuMedianMs, y, notes };
}

export async function teardown() {
  if (weights) { weights.qweight.destroy(); weights.scales.destroy(); weights = null; }
  noBias?.destroy();
  device?.destroy();
  device = null;
}
