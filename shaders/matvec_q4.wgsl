// Matrix-vector product for decode over q4 weights (model/format/FORMAT.md):
// out[m, n] = Σ_k x[m, k] · (q[n, k] − 8) · scale[n, k / GROUP_SIZE] (+ bias[n]).
// qweight is u32 [N][K/8] with nibble i of word w holding k = 8w + i; it is read as
// vec4<u32>, 32 weights per load. scales are f16 [N][K/GROUP_SIZE], read two per u32 so
// no shader-f16 is needed. ROWS rows per workgroup, THREADS_PER_ROW invocations per row
// striding over 32-weight blocks, then a workgroup-memory reduction. K and GROUP_SIZE are
// multiples of 8 (the converter guarantees it); CogVLM's K are multiples of 32, which take
// the vec4 path, any other K reads one word at a time.
// CPU twin: model.MatMulQ4.
//
// Shared declarations (joined by shaders.Source):
// Params: common_linear.wgsl; ROWS, THREADS_PER_ROW and the reduction (store_sum):
// common_matvec.wgsl; GROUP_SIZE, scale_at and dot8: common_quant.wgsl.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> qweight: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
// The same qweight as single words, for K that are no multiple of 32 (a vec4 view would
// end before the last words when the tensor's size is no multiple of 16 bytes).
@group(0) @binding(6) var<storage, read> qwords: array<u32>;

@compute @workgroup_size(ROWS * THREADS_PER_ROW)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let local_row = lid / THREADS_PER_ROW;
    let lane = lid % THREADS_PER_ROW;
    let n = wg.x * ROWS + local_row;
    let m = wg.y;
    let blocks = params.k / 32u;
    var acc = 0.0;
    if (n < params.n) {
        let wbase = n * blocks;
        let xbase = start(params.x_start) / 4u + m * (params.k / 4u);
        let sbase = n * (params.k / GROUP_SIZE);
        if (params.k % 32u == 0u) {
            for (var b = lane; b < blocks; b += THREADS_PER_ROW) {
                let w = qweight[wbase + b];
                let xb = xbase + b * 8u;
                let s0 = dot8(w.x, x[xb], x[xb + 1u]);
                let s1 = dot8(w.y, x[xb + 2u], x[xb + 3u]);
                let s2 = dot8(w.z, x[xb + 4u], x[xb + 5u]);
                let s3 = dot8(w.w, x[xb + 6u], x[xb + 7u]);
                if (GROUP_SIZE % 32u == 0u) {
                    acc += (s0 + s1 + s2 + s3) * scale_at(sbase + (b * 32u) / GROUP_SIZE);
                } else { // a block spans several groups: a scale per word
                    let k0 = b * 32u;
                    acc += s0 * scale_at(sbase + k0 / GROUP_SIZE) + s1 * scale_at(sbase + (k0 + 8u) / GROUP_SIZE)
                         + s2 * scale_at(sbase + (k0 + 16u) / GROUP_SIZE) + s3 * scale_at(sbase + (k0 + 24u) / GROUP_SIZE);
                }
            }
        } else { // rows are not vec4-aligned: one word (8 weights) at a time
            let words = params.k / 8u;
            for (var i = lane; i < words; i += THREADS_PER_ROW) {
                let xb = xbase + i * 2u;
                acc += dot8(qwords[n * words + i], x[xb], x[xb + 1u]) * scale_at(sbase + (i * 8u) / GROUP_SIZE);
            }
        }
    }
    store_sum(lid, lane, m, n, acc);
}
