// Top-k / top-p sampling on the GPU, so a sampled decode step reads back only the chosen
// token id. Mirrors model.Sampler for temperature > 0, 1 ≤ top_k ≤ 256 and no repetition
// penalty (other settings sample on the CPU): keep the top_k largest logits (ties with
// the k-th stay), order them by logit (then id), p_i = exp((l_i − l_0)/T), keep the
// shortest prefix whose share of the mass reaches top_p, then pick the token where
// u·Σp crosses the running sum (u from the CPU sampler's generator, per step).
// One workgroup: the k-th largest logit is found by a radix select over the float bits
// (four 8-bit passes), the ≤ 512 candidates are gathered and bitonic-sorted in workgroup
// memory, and invocation 0 walks them. CPU twin: model.Sampler.

struct Params {
    n: u32, // vocabulary size
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Written every step (the Go side's drawBytes, queued by Decoder.SetDraw): the step's
// draw and the sampling settings.
struct Draw {
    u: f32, // uniform in [0, 1)
    top_k: u32,
    top_p: f32, // 0 or 1: off
    inv_temperature: f32,
}

const THREADS = 256u;
const CAND = 512u; // candidates kept (top_k ≤ 256 leaves room for ties)

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> token: array<u32>;
@group(0) @binding(3) var<uniform> draw: Draw;

var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> prefix_key: u32;
var<workgroup> prefix_mask: u32;
var<workgroup> remaining: u32;
var<workgroup> count: atomic<u32>;
var<workgroup> cand_key: array<u32, CAND>;
var<workgroup> cand_id: array<u32, CAND>;

// key orders floats as unsigned integers: larger float, larger key.
fn key(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn value(k: u32) -> f32 {
    return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}

// before reports whether candidate a comes before b: larger logit first, then lower id.
fn before(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
    return ka > kb || (ka == kb && ia < ib);
}

@compute @workgroup_size(THREADS)
fn main(@builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        prefix_key = 0u;
        prefix_mask = 0u;
        remaining = draw.top_k;
    }
    // Radix select: the key of the k-th largest logit, 8 bits at a time from the top.
    for (var shift = 24i; shift >= 0i; shift -= 8i) {
        atomicStore(&hist[lid], 0u);
        workgroupBarrier();
        let pk = workgroupUniformLoad(&prefix_key);
        let pm = prefix_mask;
        for (var i = lid; i < params.n; i += THREADS) {
            let k = key(logits[i]);
            if ((k & pm) == pk) {
                atomicAdd(&hist[(k >> u32(shift)) & 0xffu], 1u);
            }
        }
        workgroupBarrier();
        if (lid == 0u) {
            var need = remaining;
            var bin = 255i;
            loop {
                let c = atomicLoad(&hist[u32(bin)]);
                if (c >= need || bin == 0i) {
                    break;
                }
                need -= c;
                bin -= 1i;
            }
            remaining = need;
            prefix_key = prefix_key | (u32(bin) << u32(shift));
            prefix_mask = prefix_mask | (0xffu << u32(shift));
        }
        workgroupBarrier();
    }
    // Gather every logit at or above the threshold: the top k and ties with the k-th.
    let threshold = workgroupUniformLoad(&prefix_key);
    if (lid == 0u) {
        atomicStore(&count, 0u);
    }
    for (var i = lid; i < CAND; i += THREADS) {
        cand_key[i] = 0u; // sorts last
        cand_id[i] = 0xffffffffu;
    }
    workgroupBarrier();
    for (var i = lid; i < params.n; i += THREADS) {
        let k = key(logits[i]);
        if (k >= threshold) {
            let slot = atomicAdd(&count, 1u);
            if (slot < CAND) {
                cand_key[slot] = k;
                cand_id[slot] = i;
            }
        }
    }
    workgroupBarrier();
    // Bitonic sort of the candidates, first = largest.
    for (var size = 2u; size <= CAND; size <<= 1u) {
        for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
            for (var i = lid; i < CAND; i += THREADS) {
                let j = i ^ stride;
                if (j > i) {
                    let descending = (i & size) == 0u;
                    let ij = before(cand_key[j], cand_id[j], cand_key[i], cand_id[i]);
                    if (ij == descending) {
                        let tk = cand_key[i];
                        let ti = cand_id[i];
                        cand_key[i] = cand_key[j];
                        cand_id[i] = cand_id[j];
                        cand_key[j] = tk;
                        cand_id[j] = ti;
                    }
                }
            }
            workgroupBarrier();
        }
    }
    if (lid != 0u) {
        return;
    }
    let kept = min(atomicLoad(&count), CAND);
    let top = value(cand_key[0]);
    var sum = 0.0;
    for (var i = 0u; i < kept; i++) {
        sum += exp((value(cand_key[i]) - top) * draw.inv_temperature);
    }
    var keep = kept;
    if (draw.top_p > 0.0 && draw.top_p < 1.0) {
        var cum = 0.0;
        var s2 = 0.0;
        for (var i = 0u; i < kept; i++) {
            let p = exp((value(cand_key[i]) - top) * draw.inv_temperature);
            cum += p / sum;
            s2 += p;
            if (cum >= draw.top_p) {
                keep = i + 1u;
                break;
            }
        }
        if (keep < kept) {
            sum = s2;
        }
    }
    var u = draw.u * sum;
    var chosen = cand_id[keep - 1u];
    for (var i = 0u; i < keep; i++) {
        u -= exp((value(cand_key[i]) - top) * draw.inv_temperature);
        if (u < 0.0) {
            chosen = cand_id[i];
            break;
        }
    }
    token[0] = chosen;
}
