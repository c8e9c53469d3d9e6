// Matrix-vector product for decode over q8 weights (model/format/FORMAT.md): the lm_head of a
// q4 package. out[m, n] = Σ_k x[m, k] · q[n, k] · scale[n, k / GROUP_SIZE] (+ bias[n]),
// q an int8 with byte i of u32 word w holding k = 4w + i; read as vec4<u32>, 16 weights
// per load. Same structure as matvec_q4.wgsl. K a multiple of 16 and of GROUP_SIZE, and
// GROUP_SIZE a multiple of 16.
// CPU twin: model.MatMulQ8.
//
// Shared declarations (joined by shaders.Source):
// Params: common_linear.wgsl; ROWS, THREADS_PER_ROW and the reduction (store_sum):
// common_matvec.wgsl; GROUP_SIZE, scale_at and int8x4: common_quant.wgsl.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> qweight: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(ROWS * THREADS_PER_ROW)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let local_row = lid / THREADS_PER_ROW;
    let lane = lid % THREADS_PER_ROW;
    let n = wg.x * ROWS + local_row;
    let m = wg.y;
    let blocks = params.k / 16u;
    var acc = 0.0;
    if (n < params.n) {
        let wbase = n * blocks;
        let xbase = start(params.x_start) / 4u + m * (params.k / 4u);
        let sbase = n * (params.k / GROUP_SIZE);
        for (var b = lane; b < blocks; b += THREADS_PER_ROW) {
            let w = qweight[wbase + b];
            let xb = xbase + b * 4u;
            let s = dot(x[xb], int8x4(w.x)) + dot(x[xb + 1u], int8x4(w.y))
                  + dot(x[xb + 2u], int8x4(w.z)) + dot(x[xb + 3u], int8x4(w.w));
            acc += s * scale_at(sbase + (b * 16u) / GROUP_SIZE);
        }
    }
    store_sum(lid, lane, m, n, acc);
}
