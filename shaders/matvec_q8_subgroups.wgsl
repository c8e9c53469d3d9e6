enable subgroups;

// matvec_q8.wgsl's decode product (the lm_head of a q4 package) with subgroup reductions,
// like matvec_q4_subgroups.wgsl: one row per workgroup of THREADS invocations (the
// adapter's subgroup size), 16 int8 weights per vec4<u32> load, subgroupAdd, then one
// elected lane per subgroup adds into a workgroup slot. K and GROUP_SIZE are multiples of
// 16; other shapes take matvec_q8.wgsl. CPU twin: quant.MatMulQ8.

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
var<workgroup> partial: array<f32, THREADS>;

fn scale_at(i: u32) -> f32 {
    let pair = unpack2x16float(scales[i / 2u]);
    return select(pair.x, pair.y, (i & 1u) == 1u);
}

fn int8x4(word: u32) -> vec4<f32> {
    let w = i32(word);
    return vec4<f32>(vec4<i32>(w << 24u, w << 16u, w << 8u, w) >> vec4<u32>(24u));
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
    let blocks = params.k / 16u;
    let wbase = n * blocks;
    let xbase = m * (params.k / 4u);
    let sbase = n * (params.k / GROUP_SIZE);
    var acc = 0.0;
    for (var b = lid; b < blocks; b += THREADS) {
        let w = qweight[wbase + b];
        let xb = xbase + b * 4u;
        let s = dot(x[xb], int8x4(w.x)) + dot(x[xb + 1u], int8x4(w.y))
              + dot(x[xb + 2u], int8x4(w.z)) + dot(x[xb + 3u], int8x4(w.w));
        acc += s * scale_at(sbase + (b * 16u) / GROUP_SIZE);
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
