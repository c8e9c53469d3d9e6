// Register-blocked matrix-matrix product over q4 weights (model/format/FORMAT.md) for a few
// rows at a time, without workgroup memory or barriers:
// out[m, n] = Σ_k x[m, k] · (q[n, k] − 8) · scale[n, k / GROUP_SIZE] (+ bias[n]).
// Each invocation owns 4 output columns and 16 rows. Per word (8 inputs) it loads the 4
// columns' words as one vec4<u32>, so the 32 weights dequantize in 8 vec4 operations,
// as 8 vectors over the columns (w_j holds input k + j of the 4 columns); each of the 16
// rows then adds 8 vec4 multiply-adds. Every weight is read once per 16 rows and every x
// element once per 4 columns, from memory (x is small and cached). The accumulators are
// 16 named vec4s, not an array: SwiftShader spills indexed private arrays to memory. 16
// rows measured best there (8: 1.5× slower, 32: spills, 1.6× slower). On a CPU adapter,
// where workgroup memory and barriers are slow, this beats the tiled kernel at every M;
// the engine's rule is in wasm/kernels/matmul.go.
// Any M and N; K a multiple of 8, GROUP_SIZE a multiple of 8 dividing K; x starts at a
// 16-byte boundary.
// CPU twin: model.MatMulQ4.
//
// Shared declarations (joined by shaders.Source):
// Params and store_row: common_linear.wgsl; THREADS, COLS, ROWS and store_rows:
// common_rows.wgsl; GROUP_SIZE and scale_at: common_quant.wgsl.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> qweight: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// fma8 is Σ_j a[j]·w_j over one word's 8 inputs for one row (a, b: its inputs k..k+7).
fn fma8(acc: vec4<f32>, a: vec4<f32>, b: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>,
        w4: vec4<f32>, w5: vec4<f32>, w6: vec4<f32>, w7: vec4<f32>) -> vec4<f32> {
    return acc + a.x * w0 + a.y * w1 + a.z * w2 + a.w * w3 + b.x * w4 + b.y * w5 + b.z * w6 + b.w * w7;
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
        let s = vec4<f32>(scale_at(srow.x + g), scale_at(srow.y + g), scale_at(srow.z + g), scale_at(srow.w + g));
        let s8 = -8.0 * s; // (q − 8)·s = q·s − 8s, one multiply-add
        for (var w = g * (GROUP_SIZE / 8u); w < (g + 1u) * (GROUP_SIZE / 8u); w++) {
            let q = vec4<u32>(qweight[wrow.x + w], qweight[wrow.y + w], qweight[wrow.z + w], qweight[wrow.w + w]);
            let w0 = fma(vec4<f32>(q & vec4<u32>(15u)), s, s8);
            let w1 = fma(vec4<f32>((q >> vec4<u32>(4u)) & vec4<u32>(15u)), s, s8);
            let w2 = fma(vec4<f32>((q >> vec4<u32>(8u)) & vec4<u32>(15u)), s, s8);
            let w3 = fma(vec4<f32>((q >> vec4<u32>(12u)) & vec4<u32>(15u)), s, s8);
            let w4 = fma(vec4<f32>((q >> vec4<u32>(16u)) & vec4<u32>(15u)), s, s8);
            let w5 = fma(vec4<f32>((q >> vec4<u32>(20u)) & vec4<u32>(15u)), s, s8);
            let w6 = fma(vec4<f32>((q >> vec4<u32>(24u)) & vec4<u32>(15u)), s, s8);
            let w7 = fma(vec4<f32>(q >> vec4<u32>(28u)), s, s8);
            let v = 2u * w;
            acc0 = fma8(acc0, x[x0 + v], x[x0 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc1 = fma8(acc1, x[x1 + v], x[x1 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc2 = fma8(acc2, x[x2 + v], x[x2 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc3 = fma8(acc3, x[x3 + v], x[x3 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc4 = fma8(acc4, x[x4 + v], x[x4 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc5 = fma8(acc5, x[x5 + v], x[x5 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc6 = fma8(acc6, x[x6 + v], x[x6 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc7 = fma8(acc7, x[x7 + v], x[x7 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc8 = fma8(acc8, x[x8 + v], x[x8 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc9 = fma8(acc9, x[x9 + v], x[x9 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc10 = fma8(acc10, x[x10 + v], x[x10 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc11 = fma8(acc11, x[x11 + v], x[x11 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc12 = fma8(acc12, x[x12 + v], x[x12 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc13 = fma8(acc13, x[x13 + v], x[x13 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc14 = fma8(acc14, x[x14 + v], x[x14 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
            acc15 = fma8(acc15, x[x15 + v], x[x15 + v + 1u], w0, w1, w2, w3, w4, w5, w6, w7);
        }
    }
    store_rows(r0, c0, acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7, acc8, acc9, acc10, acc11, acc12, acc13, acc14, acc15);
}
