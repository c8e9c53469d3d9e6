// Splits the fused query_key_value output and applies rotary position embedding:
// qkv [rows, 3, heads, head_dim] → q [rows, heads, head_dim] (rotated), and rows
// write_row + r of the KV cache: k (rotated) and v (copied), in f32 or f16 (F16_KV). Rotate-half convention with a
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
// The KV cache's encoding: f32 (one value per word, as bits) or f16, two values per
// word (pack2x16float: element 2w in the low half of word w).
override F16_KV: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> q: array<f32>;
@group(0) @binding(5) var<storage, read_write> k_cache: array<u32>;
@group(0) @binding(6) var<storage, read_write> v_cache: array<u32>;
@group(0) @binding(7) var<uniform> step: Step;

// Each invocation handles two adjacent dimensions i, i + 1 of the first half of a head and
// their rotation partners i + half, i + half + 1, so an f16 cache is written in whole
// words (head_dim a multiple of 4).
@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let hd = params.head_dim;
    let half = hd / 2u;
    let quarter = half / 2u;
    let width = params.heads * hd;
    let items = params.rows * params.heads * quarter;
    let stride = groups.x * WORKGROUP_SIZE;
    for (var p = gid.x; p < items; p += stride) {
        let i = 2u * (p % quarter);
        let row_head = p / quarter;
        let r = row_head / params.heads;
        let h = row_head % params.heads;
        let base = positions[r] * half + i;
        let cs0 = table[base];
        let cs1 = table[base + 1u];
        let cosv = vec2<f32>(cs0.x, cs1.x);
        let sinv = vec2<f32>(cs0.y, cs1.y);
        let src = r * 3u * width + h * hd + i;
        let dst = r * width + h * hd + i;
        let cache = (step.write_row + r) * width + h * hd + i;

        let qa = vec2<f32>(qkv[src], qkv[src + 1u]);
        let qb = vec2<f32>(qkv[src + half], qkv[src + half + 1u]);
        let q_lo = qa * cosv - qb * sinv;
        let q_hi = qb * cosv + qa * sinv;
        q[dst] = q_lo.x;
        q[dst + 1u] = q_lo.y;
        q[dst + half] = q_hi.x;
        q[dst + half + 1u] = q_hi.y;

        let ka = vec2<f32>(qkv[src + width], qkv[src + width + 1u]);
        let kb = vec2<f32>(qkv[src + width + half], qkv[src + width + half + 1u]);
        let k_lo = ka * cosv - kb * sinv;
        let k_hi = kb * cosv + ka * sinv;
        let v_lo = vec2<f32>(qkv[src + 2u * width], qkv[src + 2u * width + 1u]);
        let v_hi = vec2<f32>(qkv[src + 2u * width + half], qkv[src + 2u * width + half + 1u]);
        if (F16_KV) {
            // cache and half are even: each pair is one word
            k_cache[cache / 2u] = pack2x16float(k_lo);
            k_cache[(cache + half) / 2u] = pack2x16float(k_hi);
            v_cache[cache / 2u] = pack2x16float(v_lo);
            v_cache[(cache + half) / 2u] = pack2x16float(v_hi);
        } else {
            k_cache[cache] = bitcast<u32>(k_lo.x);
            k_cache[cache + 1u] = bitcast<u32>(k_lo.y);
            k_cache[cache + half] = bitcast<u32>(k_hi.x);
            k_cache[cache + half + 1u] = bitcast<u32>(k_hi.y);
            v_cache[cache] = bitcast<u32>(v_lo.x);
            v_cache[cache + 1u] = bitcast<u32>(v_lo.y);
            v_cache[cache + half] = bitcast<u32>(v_hi.x);
            v_cache[cache + half + 1u] = bitcast<u32>(v_hi.y);
        }
    }
}
