enable f16;
enable subgroups;

// matvec_q4_subgroups.wgsl in half precision, for adapters with `shader-f16` and
// `subgroups`: each word's 8 weights are dequantized to f16, (q − 8)·scale (q − 8 is exact,
// the product rounds once), the 8 inputs are rounded to f16 and their 8 products summed in
// f16; the sums of the words are accumulated in f32 (a row of K = 11008 has 1376 words:
// an f16 running sum would lose the small terms). The weights are scaled before the
// products so that no f16 sum grows past the activations' own range. Same shapes as
// matvec_q4_subgroups.wgsl.
// CPU twin: quant.MatMulQ4 on f16-rounded inputs and weights, each word's sum rounded to
// f16 (twinMatMulF16).

struct Params {
    m: u32,
    n: u32,
    k: u32,
    has_bias: u32,
    x_start: u32,   // x[0, 0] in the x binding (a multiple of 4 where x is read as vec4s)
    out_start: u32, // out[0, 0] in the out binding
}

// OFFSETS is set where a binding starts between storage-aligned offsets (engine.bindFrom);
// unset, the starts are the constant 0 and the kernel compiles as if it had none.
override OFFSETS: bool = false;

fn x_start() -> u32 {
    return select(0u, params.x_start, OFFSETS);
}

fn out_start() -> u32 {
    return select(0u, params.out_start, OFFSETS);
}

// ROWS output rows per workgroup, LANES invocations per row (the adapter's subgroup size):
// several rows a workgroup keep a GPU's schedulers fed where one 32-lane workgroup per row
// would cap its occupancy (NVIDIA runs at most 32 workgroups per SM).
override ROWS: u32 = 2u;
override LANES: u32 = 32u;
override GROUP_SIZE: u32 = 32u;
override THREADS: u32 = ROWS * LANES; // not meant to be set: the workgroup size

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> qweight: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> slots: atomic<u32>;
// per subgroup (in the order their elected lanes took a slot), one partial sum per row
var<workgroup> partial: array<f32, THREADS * ROWS>;

fn scale_at(i: u32) -> f32 {
    let pair = unpack2x16float(scales[i / 2u]);
    return select(pair.x, pair.y, (i & 1u) == 1u);
}

// dot8 is one word's 8 weights, (q − 8)·s in f16, dotted with 8 inputs rounded to f16,
// the sum in f16.
fn dot8(word: u32, x0: vec4<f32>, x1: vec4<f32>, s: f16) -> f32 {
    let lo = (vec4<f16>(vec4<u32>(word, word >> 4u, word >> 8u, word >> 12u) & vec4<u32>(15u)) - 8.0h) * s;
    let hi = (vec4<f16>(vec4<u32>(word >> 16u, word >> 20u, word >> 24u, word >> 28u) & vec4<u32>(15u)) - 8.0h) * s;
    return f32(dot(vec4<f16>(x0), lo) + dot(vec4<f16>(x1), hi));
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = lid / LANES;
    let lane = lid % LANES;
    let n = min(wg.x * ROWS + row, params.n - 1u); // rows past N redo row N − 1, unstored
    let m = wg.y;
    if (lid == 0u) {
        atomicStore(&slots, 0u);
    }
    workgroupBarrier();
    let blocks = params.k / 32u;
    let wbase = n * blocks;
    let xbase = x_start() / 4u + m * (params.k / 4u);
    let sbase = n * (params.k / GROUP_SIZE);
    var acc = 0.0;
    for (var b = lane; b < blocks; b += LANES) {
        let w = qweight[wbase + b];
        let xb = xbase + b * 8u;
        let s = f16(scale_at(sbase + (b * 32u) / GROUP_SIZE)); // an f16 in the file: exact
        acc += dot8(w.x, x[xb], x[xb + 1u], s) + dot8(w.y, x[xb + 2u], x[xb + 3u], s)
             + dot8(w.z, x[xb + 4u], x[xb + 5u], s) + dot8(w.w, x[xb + 6u], x[xb + 7u], s);
    }
    // A subgroup may hold lanes of several rows (nothing promises that subgroups are the
    // LANES-aligned ranges of invocations): it sums each row's lanes separately.
    var slot = 0u;
    if (subgroupElect()) {
        slot = atomicAdd(&slots, 1u);
    }
    slot = subgroupBroadcastFirst(slot);
    for (var r = 0u; r < ROWS; r++) {
        let sum = subgroupAdd(select(0.0, acc, row == r));
        if (subgroupElect()) {
            partial[slot * ROWS + r] = sum;
        }
    }
    workgroupBarrier();
    if (lid < ROWS && wg.x * ROWS + lid < params.n) {
        var v = 0.0;
        let count = atomicLoad(&slots);
        for (var i = 0u; i < count; i++) {
            v += partial[i * ROWS + lid];
        }
        if (params.has_bias != 0u) {
            v += bias[wg.x * ROWS + lid];
        }
        out[out_start() + m * params.n + wg.x * ROWS + lid] = v;
    }
}
