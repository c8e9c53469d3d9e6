// The attention kernels' shared declarations (attention.wgsl, attention_tiled.wgsl),
// joined after each by shaders.Source. Each binds `k` and `v`: [kv_rows, heads, head_dim],
// f32 bits, or f16 two to a word (F16_KV: the KV cache written by qkv_rope.wgsl).

struct Params {
    q_rows: u32,
    _pad2: u32,
    heads: u32,
    head_dim: u32,
    causal: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
}

// Keys per chunk and invocations per workgroup; a power of two.
override KEYS: u32 = 64u;
// k and v hold f16 pairs (pack2x16float) instead of f32 bits.
override F16_KV: bool = false;

// key_pair is k[e], k[e + 1] for an even element index e.
fn key_pair(e: u32) -> vec2<f32> {
    if (F16_KV) {
        return unpack2x16float(k[e / 2u]);
    }
    return vec2<f32>(bitcast<f32>(k[e]), bitcast<f32>(k[e + 1u]));
}

fn value_at(e: u32) -> f32 {
    if (F16_KV) {
        return f16_in(v[e / 2u], e);
    }
    return bitcast<f32>(v[e]);
}
