enable f16;
enable subgroups;

// matvec_q4_subgroups.wgsl in half precision, for adapters with `shader-f16` and
// `subgroups`: each word's 8 weights are dequantized to f16, (q − 8)·scale (q − 8 is exact,
// the product rounds once), the 8 inputs are rounded to f16 and their 8 products summed in
// f16; the sums of the words are accumulated in f32 (a row of K = 11008 has 1376 words:
// an f16 running sum would lose the small terms). The weights are scaled before the
// products so that no f16 sum grows past the activations' own range. Same shapes as
// matvec_q4_subgroups.wgsl.
// CPU twin: model.MatMulQ4 on f16-rounded inputs and weights, each word's sum rounded to
// f16 (twinMatMulF16).
//
// Shared declarations (joined by shaders.Source):
// Params: common_linear.wgsl; ROWS, LANES and the subgroup reduction (clear_slots,
// store_sums): common_subgroups.wgsl; GROUP_SIZE, scale_at, q4_lo and q4_hi:
// common_quant.wgsl (which says why main is not matvec_q4_subgroups.wgsl's).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> qweight: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// dot8_f16 is one word's 8 weights, (q − 8)·s in f16, dotted with 8 inputs rounded to f16,
// the sum in f16.
fn dot8_f16(word: u32, x0: vec4<f32>, x1: vec4<f32>, s: f16) -> f32 {
    let lo = (vec4<f16>(q4_lo(word)) - 8.0h) * s;
    let hi = (vec4<f16>(q4_hi(word)) - 8.0h) * s;
    return f32(dot(vec4<f16>(x0), lo) + dot(vec4<f16>(x1), hi));
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = lid / LANES;
    let lane = lid % LANES;
    let n = min(wg.x * ROWS + row, params.n - 1u); // rows past N redo row N − 1, unstored
    let m = wg.y;
    clear_slots(lid);
    let blocks = params.k / 32u;
    let wbase = n * blocks;
    let xbase = start(params.x_start) / 4u + m * (params.k / 4u);
    let sbase = n * (params.k / GROUP_SIZE);
    var acc = 0.0;
    for (var b = lane; b < blocks; b += LANES) {
        let w = qweight[wbase + b];
        let xb = xbase + b * 8u;
        let s = f16(scale_at(sbase + (b * 32u) / GROUP_SIZE)); // an f16 in the file: exact
        acc += dot8_f16(w.x, x[xb], x[xb + 1u], s) + dot8_f16(w.y, x[xb + 2u], x[xb + 3u], s)
             + dot8_f16(w.z, x[xb + 4u], x[xb + 5u], s) + dot8_f16(w.w, x[xb + 6u], x[xb + 7u], s);
    }
    store_sums(lid, row, m, wg.x * ROWS, acc);
}
