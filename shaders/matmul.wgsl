// Tiled matrix-matrix product for prefill and the vision tower, f32 weights:
// out[m, n] = Σ_k x[m, k] · w[n, k] (+ bias[n]), w laid out [N, K] like a PyTorch Linear.
// A 16×16 workgroup computes a 64×64 tile of out, each invocation a 4×4 register block;
// x and w tiles of depth 16 are staged in workgroup memory. Any M, N, K work (edges are
// masked). Each output accumulates k in increasing order, as the CPU does.
// CPU twin: model.MatMul.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    has_bias: u32,
}

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
    var acc: array<array<f32, 4>, 4>;
    for (var k0 = 0u; k0 < params.k; k0 += TILE_K) {
        for (var i = 0u; i < 4u; i++) {
            let e = tid + i * THREADS;
            let r = e / TILE_K;
            let c = e % TILE_K;
            var xv = 0.0;
            if (row0 + r < params.m && k0 + c < params.k) {
                xv = x[(row0 + r) * params.k + k0 + c];
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
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                a[i] = xs[(lid.y * 4u + i) * TILE_K + kk];
                b[i] = ws[(lid.x * 4u + i) * TILE_K + kk];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] += a[i] * b[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y * 4u + i;
        if (r >= params.m) {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + lid.x * 4u + j;
            if (c < params.n) {
                var v = acc[i][j];
                if (params.has_bias != 0u) {
                    v += bias[c];
                }
                out[r * params.n + c] = v;
            }
        }
    }
}
