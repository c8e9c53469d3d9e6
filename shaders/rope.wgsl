// Rotary position embedding, rotate-half convention (value i pairs with i + head_dim/2),
// in place on x [rows, heads, head_dim]; row r is at rotary position positions[r].
// cos/sin come from a table [max_positions, head_dim/2] of vec2(cos, sin) computed on the
// CPU once, because WGSL's cos/sin lose accuracy far outside [-π, π].
// CPU twin: model.RoPE.

struct Params {
    rows: u32,
    heads: u32,
    head_dim: u32,
    _pad: u32,
}

override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let half = params.head_dim / 2u;
    let pairs = params.rows * params.heads * half;
    let stride = groups.x * WORKGROUP_SIZE;
    for (var p = gid.x; p < pairs; p += stride) {
        let i = p % half;
        let row_head = p / half;
        let r = row_head / params.heads;
        let cs = table[positions[r] * half + i];
        let base = row_head * params.head_dim;
        let a = x[base + i];
        let b = x[base + i + half];
        x[base + i] = a * cs.x - b * cs.y;
        x[base + i + half] = b * cs.x + a * cs.y;
    }
}
