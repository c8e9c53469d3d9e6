// Embedding gather from a q4 table (a package whose policy puts the token embedding in
// q4): out[r, i] = (q[ids[r], i] − 8) · scale[ids[r], i / GROUP_SIZE], q the nibble
// i % 8 of u32 word i / 8 of its row. CPU twin: model.Embedding over quant.DequantizeQ4.
//
// Shared declarations (joined by shaders.Source):
// GROUP_SIZE and scale_at: common_quant.wgsl.

struct Params {
    rows: u32,
    dim: u32,
    _pad0: u32,
    _pad1: u32,
}

override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> qweight: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = wg.x;
    let id = ids[r];
    for (var i = lid; i < params.dim; i += WORKGROUP_SIZE) {
        let e = id * params.dim + i;
        let q = f32((qweight[e / 8u] >> (4u * (e % 8u))) & 15u) - 8.0;
        out[r * params.dim + i] = q * scale_at(e / GROUP_SIZE);
    }
}
