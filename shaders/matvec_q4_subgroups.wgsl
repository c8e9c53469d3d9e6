enable subgroups;

// matvec_q4.wgsl's decode product with subgroup reductions, for adapters with the
// `subgroups` feature: one row per workgroup, THREADS invocations striding over its
// 32-weight blocks; each subgroup sums its lanes with subgroupAdd and one elected lane
// per subgroup adds the result into a workgroup slot (subgroups need not be contiguous
// ranges of invocations, so slots are handed out by an atomic counter). K and GROUP_SIZE
// are multiples of 32 (CogVLM's are); other shapes take matvec_q4.wgsl.
// CPU twin: quant.MatMulQ4.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    has_bias: u32,
}

override THREADS: u32 = 64u;
override GROUP_SIZE: u32 = 32u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> qweight: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> slots: atomic<u32>;
var<workgroup> partial: array<f32, THREADS>; // one per subgroup at most

fn scale_at(i: u32) -> f32 {
    let pair = unpack2x16float(scales[i / 2u]);
    return select(pair.x, pair.y, (i & 1u) == 1u);
}

fn dot8(word: u32, x0: vec4<f32>, x1: vec4<f32>) -> f32 {
    let lo = vec4<f32>(vec4<u32>(word, word >> 4u, word >> 8u, word >> 12u) & vec4<u32>(15u)) - 8.0;
    let hi = vec4<f32>(vec4<u32>(word >> 16u, word >> 20u, word >> 24u, word >> 28u) & vec4<u32>(15u)) - 8.0;
    return dot(x0, lo) + dot(x1, hi);
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let n = wg.x;
    let m = wg.y;
    if (lid == 0u) {
        atomicStore(&slots, 0u);
    }
    workgroupBarrier();
    let blocks = params.k / 32u;
    let wbase = n * blocks;
    let xbase = m * (params.k / 4u);
    let sbase = n * (params.k / GROUP_SIZE);
    var acc = 0.0;
    for (var b = lid; b < blocks; b += THREADS) {
        let w = qweight[wbase + b];
        let xb = xbase + b * 8u;
        let s = dot8(w.x, x[xb], x[xb + 1u]) + dot8(w.y, x[xb + 2u], x[xb + 3u])
              + dot8(w.z, x[xb + 4u], x[xb + 5u]) + dot8(w.w, x[xb + 6u], x[xb + 7u]);
        acc += s * scale_at(sbase + (b * 32u) / GROUP_SIZE);
    }
    let sum = subgroupAdd(acc);
    if (subgroupElect()) {
        partial[atomicAdd(&slots, 1u)] = sum;
    }
    workgroupBarrier();
    if (lid == 0u) {
        var v = 0.0;
        let count = atomicLoad(&slots);
        for (var i = 0u; i < count; i++) {
            v += partial[i];
        }
        if (params.has_bias != 0u) {
            v += bias[n];
        }
        out[m * params.n + n] = v;
    }
}
