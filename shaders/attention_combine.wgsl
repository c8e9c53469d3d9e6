// Merges the partial results of attention.wgsl split over the sequence: per query row and
// head, with M = max_p m_p, out = Σ_p acc_p·e^(m_p − M) / Σ_p l_p·e^(m_p − M).
// One workgroup per (query row, head). CPU twin: model.Attention.

struct Params {
    q_rows: u32,
    heads: u32,
    head_dim: u32,
    parts: u32,
}

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = wg.x;
    let h = wg.y;
    let hd = params.head_dim;
    let stride = hd + 2u;
    let base = (i * params.heads + h) * params.parts * stride;
    var big = NEG_INF;
    for (var p = 0u; p < params.parts; p++) {
        big = max(big, partial[base + p * stride]);
    }
    var total = 0.0;
    for (var p = 0u; p < params.parts; p++) {
        total += partial[base + p * stride + 1u] * exp(partial[base + p * stride] - big);
    }
    for (var d = lid; d < hd; d += WORKGROUP_SIZE) {
        var a = 0.0;
        for (var p = 0u; p < params.parts; p++) {
            a += partial[base + p * stride + 2u + d] * exp(partial[base + p * stride] - big);
        }
        out[(i * params.heads + h) * hd + d] = a / total;
    }
}
