enable f16;

// matmul_q4_rows.wgsl in half precision, for adapters with `shader-f16`: the weights are
// dequantized to f16, (q − 8)·scale (q − 8 is exact, the product rounds once), the inputs
// rounded to f16, and each word's 8 products per output summed in f16 (packed f16
// multiply-adds, twice the f32 rate on most GPUs); those sums are accumulated in f32,
// since K runs to 11008. The weights are scaled before the products so that no f16 sum
// grows past the activations' own range. Same shapes and layout as matmul_q4_rows.wgsl.
// CPU twin: model.MatMulQ4 on f16-rounded inputs and weights, each word's sum rounded to
// f16 (twinMatMulF16).
//
// Shared declarations (joined by shaders.Source):
// Params and store_row: common_linear.wgsl; THREADS, COLS, ROWS and store_rows:
// common_rows.wgsl; GROUP_SIZE and scale_at: common_quant.wgsl
// (which says why main is not matmul_q4_rows.wgsl's).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> qweight: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// fma8_f16 adds Σ_j a[j]·w_j over one word's 8 inputs for one row (a, b: its inputs k..k+7,
// rounded to f16) to acc: the products and their sum in f16, the sum added in f32.
fn fma8_f16(acc: vec4<f32>, a: vec4<f32>, b: vec4<f32>, w0: vec4<f16>, w1: vec4<f16>, w2: vec4<f16>, w3: vec4<f16>,
        w4: vec4<f16>, w5: vec4<f16>, w6: vec4<f16>, w7: vec4<f16>) -> vec4<f32> {
    let ah = vec4<f16>(a);
    let bh = vec4<f16>(b);
    return acc + vec4<f32>(ah.x * w0 + ah.y * w1 + ah.z * w2 + ah.w * w3 + bh.x * w4 + bh.y * w5 + bh.z * w6 + bh.w * w7);
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    // Row blocks vary fastest (x), so the workgroups that read the same weight columns
    // run one after another and the second finds them in cache.
    let r0 = wg.x * ROWS;
    let c0 = (wg.y * THREADS + lid.x) * COLS;
    if (c0 >= params.n) {
        return;
    }
    let words_per_row = params.k / 8u;
    let groups_per_row = params.k / GROUP_SIZE;
    let vecs_per_row = params.k / 4u;
    let xs = start(params.x_start) / 4u;
    // Columns past N read column N − 1 and rows past M read row M − 1 (in bounds, never
    // stored), so the loop has no branches.
    let cols = min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.n - 1u));
    let wrow = cols * words_per_row;
    let srow = cols * groups_per_row;
    let last = params.m - 1u;
    let x0 = xs + min(r0 + 0u, last) * vecs_per_row;
    let x1 = xs + min(r0 + 1u, last) * vecs_per_row;
    let x2 = xs + min(r0 + 2u, last) * vecs_per_row;
    let x3 = xs + min(r0 + 3u, last) * vecs_per_row;
    let x4 = xs + min(r0 + 4u, last) * vecs_per_row;
    let x5 = xs + min(r0 + 5u, last) * vecs_per_row;
    let x6 = xs + min(r0 + 6u, last) * vecs_per_row;
    let x7 = xs + min(r0 + 7u, last) * vecs_per_row;
    let x8 = xs + min(r0 + 8u, last) * vecs_per_row;
    let x9 = xs + min(r0 + 9u, last) * vecs_per_row;
    let x10 = xs + min(r0 + 10u, last) * vecs_per_row;
    let x11 = xs + min(r0 + 11u, last) * vecs_per_row;
    let x12 = xs + min(r0 + 12u, last) * vecs_per_row;
    let x13 = xs + min(r0 + 13u, last) * vecs_per_row;
    let x14 = xs + min(r0 + 14u, last) * vecs_per_row;
    let x15 = xs + min(r0 + 15u, last) * vecs_per_row;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    var acc8 = vec4<f32>(0.0);
    var acc9 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc12 = vec4<f32>(0.0);
    var acc13 = vec4<f32>(0.0);
    var acc14 = vec4<f32>(0.0);
    var acc15 = vec4<f32>(0.0);
    for (var g = 0u; g < groups_per_row; g++) {
        // the scales are f16 in the file: exact
        let s = vec4<f16>(vec4<f32>(scale_at(srow.x + g), scale_at(srow.y + g), scale_at(srow.z + g), scale_at(srow.w + g)));
        for (var w = g * (GROUP_SIZE / 8u); w < (g + 1u) * (GROUP_SIZE / 8u); w++) {
            let q = vec4<u32>(qweight[wrow.x + w], qweight[wrow.y + w], qweight[wrow.z + w], qweight[wrow.w + w]);
            let w0 = (vec4<f16>(q & vec4<u32>(15u)) - 8.0h) * s;
            let w1 = (vec4<f16>((q >> vec4<u32>(4u)) & vec4<u32>(15u)) - 8.0h) * s;
            let w2 = (vec4<f16>((q >> vec4<u32>(8u)) & vec4<u32>(15u)) - 8.0h) * s;
            let w3 = (vec4<f16>((q >> vec4<u32>(12u)) & vec4<u32>(15u)) - 8.0h) * s;
            let w4 = (vec4<f16>((q >> vec4<u32>(16u)) & vec4<u32>(15u)) - 8.0h) * s;
            let w5 = (vec4<f16>((q >> vec4<u32>(20u)) & vec4<u32>(15u)) - 8.0h) * s;
            let w6 = (vec4<f16>((q >> vec4<u32>(24u)) & vec4<u32>(15u)) - 8.0h) * s;
            let w7 = (vec4<f16>(q >> vec4<u32>(28u)) - 8.0h) * s;
            let v = 2u * w;
            acc0 = fma8_f16(acc0, x[x0 + v], x[x0 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc1 = fma8_f16(acc1, x[x1 + v], x[x1 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc2 = fma8_f16(acc2, x[x2 + v], x[x2 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc3 = fma8_f16(acc3, x[x3 + v], x[x3 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc4 = fma8_f16(acc4, x[x4 + v], x[x4 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc5 = fma8_f16(acc5, x[x5 + v], x[x5 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc6 = fma8_f16(acc6, x[x6 + v], x[x6 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc7 = fma8_f16(acc7, x[x7 + v], x[x7 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc8 = fma8_f16(acc8, x[x8 + v], x[x8 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc9 = fma8_f16(acc9, x[x9 + v], x[x9 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc10 = fma8_f16(acc10, x[x10 + v], x[x10 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc11 = fma8_f16(acc11, x[x11 + v], x[x11 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc12 = fma8_f16(acc12, x[x12 + v], x[x12 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc13 = fma8_f16(acc13, x[x13 + v], x[x13 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc14 = fma8_f16(acc14, x[x14 + v], x[x14 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc15 = fma8_f16(acc15, x[x15 + v], x[x15 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
        }
    }
    store_rows(r0, c0, acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7, acc8, acc9, acc10, acc11, acc12, acc13, acc14, acc15);
}
