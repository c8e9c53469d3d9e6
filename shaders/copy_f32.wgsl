// Buffer copy, dst = src, one float at a time: copy.wgsl for a length or offsets that are
// not whole vec4s (the image rows and boi/eoi of a hidden size that is not a multiple of
// 4). CPU twin: copy (builtin).

struct Params {
    n: u32,         // number of floats
    src_start: u32, // the first float in the src binding
    dst_start: u32, // the first float in the dst binding
    _pad: u32,
}

override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let stride = groups.x * WORKGROUP_SIZE;
    for (var i = gid.x; i < params.n; i += stride) {
        dst[params.dst_start + i] = src[params.src_start + i];
    }
}
