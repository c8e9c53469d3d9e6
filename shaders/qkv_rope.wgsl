// Splits the fused query_key_value output and applies rotary position embedding:
// qkv [rows, 3, heads, head_dim] → q [rows, heads, head_dim] (rotated), and rows
// write_row + r of the KV cache: k (rotated) and v (copied). Rotate-half convention with a
// CPU-computed cos/sin table, as rope.wgsl. write_row is a per-step value (the `step`
// uniform) and positions a buffer, so a decode plan's bindings never change.
// CPU twin: model.RoPE on q and k, and the decoder's KV-cache copy (model/decoder.go).

struct Params {
    rows: u32,
    heads: u32,
    head_dim: u32,
    _pad: u32,
}

struct Step {
    kv_rows: u32,
    write_row: u32,
    _pad0: u32,
    _pad1: u32,
}

override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> q: array<f32>;
@group(0) @binding(5) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(6) var<storage, read_write> v_cache: array<f32>;
@group(0) @binding(7) var<uniform> step: Step;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let hd = params.head_dim;
    let half = hd / 2u;
    let width = params.heads * hd;
    let pairs = params.rows * params.heads * half;
    let stride = groups.x * WORKGROUP_SIZE;
    for (var p = gid.x; p < pairs; p += stride) {
        let i = p % half;
        let row_head = p / half;
        let r = row_head / params.heads;
        let h = row_head % params.heads;
        let cs = table[positions[r] * half + i];
        let src = r * 3u * width + h * hd + i;
        let dst = r * width + h * hd + i;
        let cache = (step.write_row + r) * width + h * hd + i;

        let qa = qkv[src];
        let qb = qkv[src + half];
        q[dst] = qa * cs.x - qb * cs.y;
        q[dst + half] = qb * cs.x + qa * cs.y;

        let ka = qkv[src + width];
        let kb = qkv[src + width + half];
        k_cache[cache] = ka * cs.x - kb * cs.y;
        k_cache[cache + half] = kb * cs.x + ka * cs.y;

        v_cache[cache] = qkv[src + 2u * width];
        v_cache[cache + half] = qkv[src + 2u * width + half];
    }
}
