// Buffer copy, dst = src, in vec4s: the bandwidth roofline. It reads and writes each byte
// once with the widest plain load, so its GB/s is what a bandwidth-bound kernel (a decode
// matvec) can hope to reach on the same device; the kernel benchmark reports every other
// kernel as a fraction of it. Copies of a length or at offsets that are not whole vec4s take
// copy_f32.wgsl. CPU twin: copy (builtin).

struct Params {
    n: u32,         // number of vec4s
    src_start: u32, // the first vec4 in the src binding
    dst_start: u32, // the first vec4 in the dst binding
    _pad: u32,
}

override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

// A grid-stride loop, so any n works with a capped number of workgroups; consecutive
// invocations touch consecutive vec4s on every iteration.
@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let stride = groups.x * WORKGROUP_SIZE;
    for (var i = gid.x; i < params.n; i += stride) {
        dst[start(params.dst_start) + i] = src[start(params.src_start) + i];
    }
}
