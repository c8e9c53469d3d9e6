// attention.wgsl for several queries at once (prefill and the vision tower): each
// workgroup takes a tile of 4 consecutive query rows of one head and walks the keys in
// chunks of KEYS with an online softmax, as attention.wgsl does for one row, but every key
// and value it loads serves the 4 queries (a vec4 lane per query), and one set of
// workgroup reductions serves the 4 maxima and sums. Never materializes the score matrix.
// q, out: [q_rows, heads, head_dim]; k, v: [kv_rows, heads, head_dim], f32 bits or f16
// pairs (F16_KV); kv_rows from the `step` uniform. Causal: query i sees keys
// 0 … kv_rows − q_rows + i; otherwise all keys. head_dim ≤ 4·KEYS, even for f16.
// CPU twin: model.Attention.
//
// Shared declarations (joined by shaders.Source):
// Params, KEYS, F16_KV, key_pair and value_at: common_attention.wgsl. reduce_max4 and
// reduce_sum4 are attention.wgsl's reductions over vec4s (WGSL has no generics).

const TILE = 4u; // query rows per workgroup: the lanes of a vec4

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<u32>;
@group(0) @binding(3) var<storage, read> v: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> step: Step;

var<workgroup> qs: array<vec4<f32>, 256>; // [head_dim] × the tile's 4 queries
var<workgroup> p: array<vec4<f32>, KEYS>;
var<workgroup> red: array<vec4<f32>, KEYS>;

fn reduce_max4(lid: u32, x: vec4<f32>) -> vec4<f32> {
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

fn reduce_sum4(lid: u32, x: vec4<f32>) -> vec4<f32> {
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
        @builtin(local_invocation_index) lid: u32) {
    let i0 = wg.x * TILE;
    let h = wg.y;
    let hd = params.head_dim;
    let width = params.heads * hd;
    // The tile's rows; rows past q_rows repeat the last one and are not stored.
    let rows = min(vec4<u32>(i0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.q_rows - 1u));
    for (var d = lid; d < hd; d += KEYS) {
        let off = rows * width + vec4<u32>(h * hd + d);
        qs[d] = vec4<f32>(q[off.x], q[off.y], q[off.z], q[off.w]);
    }
    workgroupBarrier();

    // keys each query sees
    var seen = vec4<u32>(step.kv_rows);
    if (params.causal != 0u) {
        seen = vec4<u32>(step.kv_rows - params.q_rows) + rows + vec4<u32>(1u);
    }
    let last = max(max(seen.x, seen.y), max(seen.z, seen.w));
    var m = vec4<f32>(NEG_INF);
    var l = vec4<f32>(0.0);
    var acc0 = vec4<f32>(0.0); // output dims lid + c·KEYS, c = 0…3, for the 4 queries
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var j0 = 0u; j0 < last; j0 += KEYS) {
        let j = j0 + lid;
        let valid = vec4<u32>(j) < seen;
        var s = vec4<f32>(NEG_INF);
        if (j < last) {
            let koff = j * width + h * hd;
            var dotp = vec4<f32>(0.0);
            for (var d = 0u; d < (hd & ~1u); d += 2u) {
                let kp = key_pair(koff + d);
                dotp += qs[d] * kp.x + qs[d + 1u] * kp.y;
            }
            if ((hd & 1u) == 1u) { // an odd head_dim (f32 k only): the last dimension alone
                dotp += qs[hd - 1u] * bitcast<f32>(k[koff + hd - 1u]);
            }
            s = select(vec4<f32>(NEG_INF), dotp * params.scale, valid);
        }
        let m_new = max(m, reduce_max4(lid, s));
        let e = select(vec4<f32>(0.0), exp(s - m_new), valid);
        p[lid] = e;
        let chunk_sum = reduce_sum4(lid, e); // its barriers also publish p
        let corr = exp(m - m_new);
        l = l * corr + chunk_sum;
        let count = min(KEYS, last - j0);
        let base = j0 * width + h * hd + lid;
        var a0 = acc0 * corr;
        var a1 = acc1 * corr;
        var a2 = acc2 * corr;
        var a3 = acc3 * corr;
        for (var jj = 0u; jj < count; jj++) {
            let pj = p[jj];
            let row = base + jj * width;
            if (lid < hd) {
                a0 += pj * value_at(row);
            }
            if (lid + KEYS < hd) {
                a1 += pj * value_at(row + KEYS);
            }
            if (lid + 2u * KEYS < hd) {
                a2 += pj * value_at(row + 2u * KEYS);
            }
            if (lid + 3u * KEYS < hd) {
                a3 += pj * value_at(row + 3u * KEYS);
            }
        }
        acc0 = a0;
        acc1 = a1;
        acc2 = a2;
        acc3 = a3;
        m = m_new;
        workgroupBarrier(); // p is rewritten by the next chunk
    }
    let o0 = acc0 / l;
    let o1 = acc1 / l;
    let o2 = acc2 / l;
    let o3 = acc3 / l;
    for (var t = 0u; t < TILE; t++) {
        let i = i0 + t;
        if (i >= params.q_rows) {
            break;
        }
        let off = i * width + h * hd + lid;
        if (lid < hd) {
            out[off] = o0[t];
        }
        if (lid + KEYS < hd) {
            out[off + KEYS] = o1[t];
        }
        if (lid + 2u * KEYS < hd) {
            out[off + 2u * KEYS] = o2[t];
        }
        if (lid + 3u * KEYS < hd) {
            out[off + 3u * KEYS] = o3[t];
        }
    }
}
