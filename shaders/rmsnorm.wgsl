// RMSNorm (LLaMA): out = x / sqrt(mean(x²) + eps) * weight, one workgroup per row.
// CPU twin: model.RMSNorm.

struct Params {
    rows: u32,
    dim: u32,
    eps: f32,
    x_start: u32,   // x[0, 0] in the x binding
    out_start: u32, // out[0, 0] in the out binding
}

// Must be a power of two (tree reduction).
override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let base = start(params.x_start) + wg.x * params.dim;
    let out_base = start(params.out_start) + wg.x * params.dim;
    var ss = 0.0;
    for (var i = lid; i < params.dim; i += WORKGROUP_SIZE) {
        let v = x[base + i];
        ss += v * v;
    }
    partial[lid] = ss;
    workgroupBarrier();
    for (var s = WORKGROUP_SIZE / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    // 1/sqrt rather than inverseSqrt: the latter's error bound is looser than the CPU's.
    let scale = 1.0 / sqrt(partial[0] / f32(params.dim) + params.eps);
    for (var i = lid; i < params.dim; i += WORKGROUP_SIZE) {
        out[out_base + i] = x[base + i] * scale * weight[i];
    }
}
