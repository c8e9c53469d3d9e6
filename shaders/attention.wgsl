// Scaled dot-product attention with an online softmax: out = softmax(q·kᵀ·scale)·v per
// head, never materializing the score matrix. One workgroup per (query row, head) walks
// the keys in chunks of KEYS: each invocation scores one key, the chunk's maximum and sum
// are reduced in workgroup memory, and the running output (head_dim values spread over the
// invocations) is rescaled by exp(m_old − m_new) as in FlashAttention.
// q, out: [q_rows, heads, head_dim]; k, v: [kv_rows, heads, head_dim] (a KV cache may hold
// more rows; only kv_rows are read). kv_rows is a per-step value: it comes from the `step`
// uniform, so a decode plan's bindings never change. The queries are the last q_rows of
// the kv_rows positions; with causal set, query i sees keys 0 … kv_rows − q_rows + i
// (prefill, and decode over the KV cache); without it, all keys (the vision tower).
// head_dim ≤ 4·KEYS, even for f16. k and v are f32 bits, or f16 two to a word (F16_KV: the KV
// cache written by qkv_rope.wgsl). CPU twin: model.Attention.
//
// Split over the sequence (PART_KEYS > 0, for decode over a long cache, where one
// workgroup per head would leave most of a GPU idle): workgroup z handles keys
// [z·PART_KEYS, (z+1)·PART_KEYS) and writes its unnormalized partial result — running
// maximum m, sum l and output acc — to `partial`; attention_combine.wgsl merges them.
//
// Shared declarations (joined by shaders.Source):
// Params, KEYS, F16_KV, key_pair and value_at: common_attention.wgsl.

// Keys per partition when split over the sequence; 0: one workgroup sees every key.
override PART_KEYS: u32 = 0u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<u32>;
@group(0) @binding(3) var<storage, read> v: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> step: Step;
// [q_rows, heads, parts, head_dim + 2]: m, l, then acc (split mode only)
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;

var<workgroup> qs: array<f32, 256>;
var<workgroup> p: array<f32, KEYS>;
var<workgroup> red: array<f32, KEYS>;

fn reduce_max(lid: u32, x: f32) -> f32 {
    red[lid] = x;
    workgroupBarrier();
    for (var s = KEYS / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn reduce_sum(lid: u32, x: f32) -> f32 {
    red[lid] = x;
    workgroupBarrier();
    for (var s = KEYS / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(KEYS)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = wg.x;
    let h = wg.y;
    let hd = params.head_dim;
    let width = params.heads * hd;
    let qoff = i * width + h * hd;
    for (var d = lid; d < hd; d += KEYS) {
        qs[d] = q[qoff + d];
    }
    workgroupBarrier();

    var seen = step.kv_rows;
    if (params.causal != 0u) {
        seen = step.kv_rows - params.q_rows + i + 1u;
    }
    var begin = 0u;
    if (PART_KEYS > 0u) {
        begin = wg.z * PART_KEYS;
        seen = min(seen, begin + PART_KEYS);
    }
    var m = NEG_INF;
    var l = 0.0;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var j0 = begin; j0 < seen; j0 += KEYS) {
        let j = j0 + lid;
        var s = NEG_INF;
        if (j < seen) {
            let koff = j * width + h * hd;
            var dotp = 0.0;
            for (var d = 0u; d < (hd & ~1u); d += 2u) {
                let kp = key_pair(koff + d);
                dotp += qs[d] * kp.x + qs[d + 1u] * kp.y;
            }
            if ((hd & 1u) == 1u) { // an odd head_dim (f32 k only): the last dimension alone
                dotp += qs[hd - 1u] * bitcast<f32>(k[koff + hd - 1u]);
            }
            s = dotp * params.scale;
        }
        let m_new = max(m, reduce_max(lid, s));
        var e = 0.0;
        if (j < seen) {
            e = exp(s - m_new);
        }
        p[lid] = e;
        let chunk_sum = reduce_sum(lid, e); // its barriers also publish p
        let corr = exp(m - m_new);
        l = l * corr + chunk_sum;
        let count = min(KEYS, seen - j0);
        for (var c = 0u; c < 4u; c++) {
            let d = lid + c * KEYS;
            if (d < hd) {
                var a = acc[c] * corr;
                for (var jj = 0u; jj < count; jj++) {
                    a += p[jj] * value_at((j0 + jj) * width + h * hd + d);
                }
                acc[c] = a;
            }
        }
        m = m_new;
        workgroupBarrier(); // p is rewritten by the next chunk
    }
    if (PART_KEYS > 0u) {
        let base = ((i * params.heads + h) * groups.z + wg.z) * (hd + 2u);
        if (lid == 0u) {
            partial[base] = m;
            partial[base + 1u] = l;
        }
        for (var c = 0u; c < 4u; c++) {
            let d = lid + c * KEYS;
            if (d < hd) {
                partial[base + 2u + d] = acc[c];
            }
        }
        return;
    }
    for (var c = 0u; c < 4u; c++) {
        let d = lid + c * KEYS;
        if (d < hd) {
            out[qoff + d] = acc[c] / l;
        }
    }
}
