// Tiled matrix-matrix product for prefill and the vision tower, f32 weights:
// out[m, n] = Σ_k x[m, k] · w[n, k] (+ bias[n]), w laid out [N, K] like a PyTorch Linear.
// A 16×16 workgroup computes a 64×64 tile of out, each invocation a 4×4 register block;
// x and w tiles of depth 16 are staged in workgroup memory. Any M, N, K work (edges are
// masked). Each output accumulates k in increasing order, as the CPU does.
// CPU twin: model.MatMul.
//
// Shared declarations (joined by shaders.Source):
// Params and store_row: common_linear.wgsl.

const TILE_M = 64u;
const TILE_N = 64u;
const TILE_K = 16u;
const THREADS = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> xs: array<f32, 1024>; // [TILE_M][TILE_K]
var<workgroup> ws: array<f32, 1024>; // [TILE_N][TILE_K]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wg.y * TILE_M;
    let col0 = wg.x * TILE_N;
    let tid = lid.y * 16u + lid.x;
    // One vec4 per output row: registers, where loop-indexed private arrays were spilled
    // to memory (3x slower on SwiftShader).
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < params.k; k0 += TILE_K) {
        for (var i = 0u; i < 4u; i++) {
            let e = tid + i * THREADS;
            let r = e / TILE_K;
            let c = e % TILE_K;
            var xv = 0.0;
            if (row0 + r < params.m && k0 + c < params.k) {
                xv = x[start(params.x_start) + (row0 + r) * params.k + k0 + c];
            }
            xs[e] = xv;
            var wv = 0.0;
            if (col0 + r < params.n && k0 + c < params.k) {
                wv = w[(col0 + r) * params.k + k0 + c];
            }
            ws[e] = wv;
        }
        workgroupBarrier();
        let depth = min(TILE_K, params.k - k0);
        for (var kk = 0u; kk < depth; kk++) {
            let a = vec4<f32>(xs[(lid.y * 4u) * TILE_K + kk], xs[(lid.y * 4u + 1u) * TILE_K + kk],
                              xs[(lid.y * 4u + 2u) * TILE_K + kk], xs[(lid.y * 4u + 3u) * TILE_K + kk]);
            let b = vec4<f32>(ws[(lid.x * 4u) * TILE_K + kk], ws[(lid.x * 4u + 1u) * TILE_K + kk],
                              ws[(lid.x * 4u + 2u) * TILE_K + kk], ws[(lid.x * 4u + 3u) * TILE_K + kk]);
            acc0 += a.x * b;
            acc1 += a.y * b;
            acc2 += a.z * b;
            acc3 += a.w * b;
        }
        workgroupBarrier();
    }
    store_row(row0 + lid.y * 4u, col0 + lid.x * 4u, acc0);
    store_row(row0 + lid.y * 4u + 1u, col0 + lid.x * 4u, acc1);
    store_row(row0 + lid.y * 4u + 2u, col0 + lid.x * 4u, acc2);
    store_row(row0 + lid.y * 4u + 3u, col0 + lid.x * 4u, acc3);
}
