// The vision tower's input rows: out[0] = cls + pos[0], out[r] = patches[r − 1] + pos[r]
// (the patch rows come from the patch-embedding matmul). CPU twin: the cls copy and
// model.Add of the position embeddings in model/vision.go.

struct Params {
    rows: u32, // cls + patches
    dim: u32,
    _pad0: u32,
    _pad1: u32,
}

override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> cls: array<f32>;
@group(0) @binding(2) var<storage, read> patches: array<f32>;
@group(0) @binding(3) var<storage, read> pos: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let n = params.rows * params.dim;
    let stride = groups.x * WORKGROUP_SIZE;
    for (var i = gid.x; i < n; i += stride) {
        var v: f32;
        if (i < params.dim) {
            v = cls[i];
        } else {
            v = patches[i - params.dim];
        }
        out[i] = v + pos[i];
    }
}
