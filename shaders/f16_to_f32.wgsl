// Expands an f16 tensor of a package (little-endian halves, two per u32) to f32, once at
// load time, so the kernels that read it (the patch-embedding matmul, the position
// embeddings) need no shader-f16. CPU twin: quant.DecodeF16.

struct Params {
    n: u32, // halves
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let stride = groups.x * WORKGROUP_SIZE;
    for (var i = gid.x; i < params.n; i += stride) {
        dst[i] = f16_in(src[i / 2u], i);
    }
}
