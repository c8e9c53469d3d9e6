// Tiled matrix-matrix product for prefill over q4 weights (model/format/FORMAT.md):
// out[m, n] = Σ_k x[m, k] · (q[n, k] − 8) · scale[n, k / GROUP_SIZE] (+ bias[n]).
// Like matmul.wgsl (64×64 tiles, 4×4 register blocks, depth-16 k tiles in workgroup
// memory), but the weight tile is dequantized once when it is staged: 128 invocations
// each unpack one u32 word (8 weights) and its scale. Any M and N; K a multiple of 16,
// GROUP_SIZE a multiple of 8 dividing K.
// CPU twin: model.MatMulQ4.
//
// Shared declarations (joined by shaders.Source):
// Params and store_row: common_linear.wgsl; GROUP_SIZE, scale_at, q4_lo and q4_hi:
// common_quant.wgsl.

const TILE_M = 64u;
const TILE_N = 64u;
const TILE_K = 16u;
const THREADS = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> qweight: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> xs: array<f32, 1024>; // [TILE_M][TILE_K]
var<workgroup> ws: array<f32, 1024>; // [TILE_N][TILE_K]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wg.y * TILE_M;
    let col0 = wg.x * TILE_N;
    let tid = lid.y * 16u + lid.x;
    let words_per_row = params.k / 8u;
    let groups_per_row = params.k / GROUP_SIZE;
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
            if (row0 + r < params.m) {
                xv = x[start(params.x_start) + (row0 + r) * params.k + k0 + c];
            }
            xs[e] = xv;
        }
        // 64 weight rows × 2 words of 8 weights.
        if (tid < 128u) {
            let r = tid / 2u;
            let half = tid % 2u;
            let n = col0 + r;
            var q = vec4<f32>(0.0);
            var q2 = vec4<f32>(0.0);
            if (n < params.n) {
                let word = qweight[n * words_per_row + k0 / 8u + half];
                let s = scale_at(n * groups_per_row + (k0 + half * 8u) / GROUP_SIZE);
                q = (vec4<f32>(q4_lo(word)) - 8.0) * s;
                q2 = (vec4<f32>(q4_hi(word)) - 8.0) * s;
            }
            let base = r * TILE_K + half * 8u;
            ws[base] = q.x;
            ws[base + 1u] = q.y;
            ws[base + 2u] = q.z;
            ws[base + 3u] = q.w;
            ws[base + 4u] = q2.x;
            ws[base + 5u] = q2.y;
            ws[base + 6u] = q2.z;
            ws[base + 7u] = q2.w;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
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
