// Embedding gather from a q8 table (the token embedding of a q4 package):
// out[r, i] = q[ids[r], i] · scale[ids[r], i / GROUP_SIZE], q an int8, byte i % 4 of u32
// word i / 4 of its row. CPU twin: model.Embedding over quant.DequantizeQ8.
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
        let word = qweight[(id * params.dim + i) / 4u];
        let q = f32((i32(word) << (24u - 8u * (i % 4u))) >> 24u);
        out[r * params.dim + i] = q * scale_at((id * params.dim + i) / GROUP_SIZE);
    }
}
