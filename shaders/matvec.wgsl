// Matrix-vector product for decode, f32 weights: out[m, n] = Σ_k x[m, k] · w[n, k]
// (+ bias[n]) for a few rows m (one per workgroup row of the grid). Bandwidth-bound: each
// workgroup streams ROWS rows of w with vec4 loads, THREADS_PER_ROW invocations per row,
// then reduces in workgroup memory. K must be a multiple of 4 (every hidden size is).
// CPU twin: model.MatMul.
//
// Shared declarations (joined by shaders.Source):
// Params: common_linear.wgsl; ROWS, THREADS_PER_ROW and the reduction (store_sum):
// common_matvec.wgsl.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(ROWS * THREADS_PER_ROW)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let local_row = lid / THREADS_PER_ROW;
    let lane = lid % THREADS_PER_ROW;
    let n = wg.x * ROWS + local_row;
    let m = wg.y;
    let k4 = params.k / 4u;
    var acc = 0.0;
    if (n < params.n) {
        let wbase = n * k4;
        let xbase = start(params.x_start) / 4u + m * k4;
        for (var i = lane; i < k4; i += THREADS_PER_ROW) {
            acc += dot(x[xbase + i], w[wbase + i]);
        }
    }
    store_sum(lid, lane, m, n, acc);
}
