// Register-blocked matrix-matrix product over q8 weights (model/format/FORMAT.md), the
// q8 counterpart of matmul_q4_rows.wgsl (the prefill of a `--quant q8` package):
// out[m, n] = Σ_k x[m, k] · q[n, k] · scale[n, k / GROUP_SIZE] (+ bias[n]), q an int8,
// byte i of u32 word w holding input 4w + i.
// Each invocation owns 4 output columns and 16 rows. Per word (4 inputs) it loads the 4
// columns' words as one vec4<u32> and sign-extends them into 4 vectors over the columns
// (w_j holds input k + j of the 4 columns); each row then adds 4 vec4 multiply-adds.
// Any M and N; K a multiple of 4, GROUP_SIZE a multiple of 4 dividing K; x starts at a
// 16-byte boundary.
// CPU twin: model.MatMulQ8.
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

// fma4 is Σ_j a[j]·w_j over one word's 4 inputs for one row (a: its inputs k..k+3).
fn fma4(acc: vec4<f32>, a: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> vec4<f32> {
    return acc + a.x * w0 + a.y * w1 + a.z * w2 + a.w * w3;
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
    let words_per_row = params.k / 4u;
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
        for (var w = g * (GROUP_SIZE / 4u); w < (g + 1u) * (GROUP_SIZE / 4u); w++) {
            let q = vec4<i32>(vec4<u32>(qweight[wrow.x + w], qweight[wrow.y + w], qweight[wrow.z + w], qweight[wrow.w + w]));
            // byte j, sign-extended: shift it to the top, then arithmetically back down
            let w0 = vec4<f32>((q << vec4<u32>(24u)) >> vec4<u32>(24u)) * s;
            let w1 = vec4<f32>((q << vec4<u32>(16u)) >> vec4<u32>(24u)) * s;
            let w2 = vec4<f32>((q << vec4<u32>(8u)) >> vec4<u32>(24u)) * s;
            let w3 = vec4<f32>(q >> vec4<u32>(24u)) * s;
            acc0 = fma4(acc0, x[x0 + w], w0, w1, w2, w3);
            acc1 = fma4(acc1, x[x1 + w], w0, w1, w2, w3);
            acc2 = fma4(acc2, x[x2 + w], w0, w1, w2, w3);
            acc3 = fma4(acc3, x[x3 + w], w0, w1, w2, w3);
            acc4 = fma4(acc4, x[x4 + w], w0, w1, w2, w3);
            acc5 = fma4(acc5, x[x5 + w], w0, w1, w2, w3);
            acc6 = fma4(acc6, x[x6 + w], w0, w1, w2, w3);
            acc7 = fma4(acc7, x[x7 + w], w0, w1, w2, w3);
            acc8 = fma4(acc8, x[x8 + w], w0, w1, w2, w3);
            acc9 = fma4(acc9, x[x9 + w], w0, w1, w2, w3);
            acc10 = fma4(acc10, x[x10 + w], w0, w1, w2, w3);
            acc11 = fma4(acc11, x[x11 + w], w0, w1, w2, w3);
            acc12 = fma4(acc12, x[x12 + w], w0, w1, w2, w3);
            acc13 = fma4(acc13, x[x13 + w], w0, w1, w2, w3);
            acc14 = fma4(acc14, x[x14 + w], w0, w1, w2, w3);
            acc15 = fma4(acc15, x[x15 + w], w0, w1, w2, w3);
        }
    }
    store_rows(r0, c0, acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7, acc8, acc9, acc10, acc11, acc12, acc13, acc14, acc15);
}
