// LayerNorm: out = (x − mean) / sqrt(var + eps) * weight + bias (biased variance, two
// passes like the CPU), one workgroup per row. CPU twin: model.LayerNorm.

struct Params {
    rows: u32,
    dim: u32,
    eps: f32,
    _pad: u32,
}

// Must be a power of two (tree reduction).
override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

// reduce sums v over the workgroup; every invocation gets the total.
fn reduce(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var s = WORKGROUP_SIZE / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier(); // everyone has read partial[0] before it is reused
    return total;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let base = wg.x * params.dim;
    let n = f32(params.dim);
    var sum = 0.0;
    for (var i = lid; i < params.dim; i += WORKGROUP_SIZE) {
        sum += x[base + i];
    }
    let mean = reduce(lid, sum) / n;
    var ss = 0.0;
    for (var i = lid; i < params.dim; i += WORKGROUP_SIZE) {
        let d = x[base + i] - mean;
        ss += d * d;
    }
    let scale = 1.0 / sqrt(reduce(lid, ss) / n + params.eps);
    for (var i = lid; i < params.dim; i += WORKGROUP_SIZE) {
        out[base + i] = (x[base + i] - mean) * scale * weight[i] + bias[i];
    }
}
