// Embedding gather, f32 table: out[r, :] = table[ids[r], :]. CPU twin: model.Embedding.

struct Params {
    rows: u32,
    dim: u32,
    _pad0: u32,
    _pad1: u32,
}

override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = wg.x;
    let src = ids[r] * params.dim;
    for (var i = lid; i < params.dim; i += WORKGROUP_SIZE) {
        out[r * params.dim + i] = table[src + i];
    }
}
