// Splits a fused query_key_value output [rows, 3, width] into q, k and v [rows, width]
// (the vision tower's attention: no rotary embedding, no cache). CPU twin: the three
// row slices of the fused weight in model/vision.go.

struct Params {
    rows: u32,
    width: u32,
    _pad0: u32,
    _pad1: u32,
}

override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> k: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let n = params.rows * params.width;
    let stride = groups.x * WORKGROUP_SIZE;
    for (var i = gid.x; i < n; i += stride) {
        let r = i / params.width;
        let c = i % params.width;
        let src = r * 3u * params.width + c;
        q[i] = qkv[src];
        k[i] = qkv[src + params.width];
        v[i] = qkv[src + 2u * params.width];
    }
}
