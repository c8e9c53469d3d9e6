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

// head_dim ≡ 2 (mod 4), where a head's first half is odd: one word (two adjacent
// dimensions, each with its own rotation partner) per invocation instead of two.
override ODD_HALF: bool = false;

// rotated is dimension j of the head at qkv[head …] rotated by (cos, sin) = cs: the
// rotate-half partner of j is j + half in the first half, j − half in the second.
fn rotated(head: u32, j: u32, half: u32, cs: vec2<f32>) -> f32 {
    if (j < half) {
        return qkv[head + j] * cs.x - qkv[head + j + half] * cs.y;
    }
    return qkv[head + j] * cs.x + qkv[head + j - half] * cs.y;
}

// words is the ODD_HALF path: invocation p writes dimensions 2w, 2w + 1 of a head of q, k
// and v, one KV-cache word in f16.
fn words(p: u32) {
    let hd = params.head_dim;
    let half = hd / 2u;
    let width = params.heads * hd;
    let j0 = 2u * (p % half);
    let j1 = j0 + 1u;
    let row_head = p / half;
    let r = row_head / params.heads;
    let h = row_head % params.heads;
    let cs0 = table[positions[r] * half + j0 % half];
    let cs1 = table[positions[r] * half + j1 % half];
    let src = r * 3u * width + h * hd;
    let dst = r * width + h * hd + j0;
    let cache = (step.write_row + r) * width + h * hd + j0; // even: width, hd and j0 are
    q[dst] = rotated(src, j0, half, cs0);
    q[dst + 1u] = rotated(src, j1, half, cs1);
    let kr = vec2<f32>(rotated(src + width, j0, half, cs0), rotated(src + width, j1, half, cs1));
    let vr = vec2<f32>(qkv[src + 2u * width + j0], qkv[src + 2u * width + j1]);
    if (F16_KV) {
        k_cache[cache / 2u] = pack2x16float(kr);
        v_cache[cache / 2u] = pack2x16float(vr);
    } else {
        k_cache[cache] = bitcast<u32>(kr.x);
        k_cache[cache + 1u] = bitcast<u32>(kr.y);
        v_cache[cache] = bitcast<u32>(vr.x);
        v_cache[cache + 1u] = bitcast<u32>(vr.y);
    }
}

// Each invocation handles two adjacent dimensions i, i + 1 of the first half of a head and
// their rotation partners i + half, i + half + 1, so an f16 cache is written in whole
// words (head_dim a multiple of 4; ODD_HALF otherwise).
@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let hd = params.head_dim;
    let half = hd / 2u;
    let quarter = half / 2u;
    let width = params.heads * hd;
    let items = params.rows * params.heads * quarter;
    let stride = groups.x * WORKGROUP_SIZE;
    if (ODD_HALF) {
        for (var p = gid.x; p < params.rows * params.heads * half; p += stride) {
            words(p);
        }
        return;
    }
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
