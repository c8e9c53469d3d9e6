// Matrix-vector product for decode over q8 weights (model/format/FORMAT.md): the lm_head of a
// q4 package. out[m, n] = Σ_k x[m, k] · q[n, k] · scale[n, k / GROUP_SIZE] (+ bias[n]),
// q an int8 with byte i of u32 word w holding k = 4w + i; read as vec4<u32>, 16 weights
// per load. Same structure as matvec_q4.wgsl. K a multiple of 16 and of GROUP_SIZE, and
// GROUP_SIZE a multiple of 16.
// CPU twin: quant.MatMulQ8.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    has_bias: u32,
    x_start: u32,   // x[0, 0] in the x binding (a multiple of 4 where x is read as vec4s)
    out_start: u32, // out[0, 0] in the out binding
}

// OFFSETS is set where a binding starts between storage-aligned offsets (engine.bindFrom);
// unset, the starts are the constant 0 and the kernel compiles as if it had none.
override OFFSETS: bool = false;

fn x_start() -> u32 {
    return select(0u, params.x_start, OFFSETS);
}

fn out_start() -> u32 {
    return select(0u, params.out_start, OFFSETS);
}

override ROWS: u32 = 4u;
override THREADS_PER_ROW: u32 = 64u; // a power of two
override GROUP_SIZE: u32 = 32u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> qweight: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, ROWS * THREADS_PER_ROW>;

fn scale_at(i: u32) -> f32 {
    let pair = unpack2x16float(scales[i / 2u]);
    return select(pair.x, pair.y, (i & 1u) == 1u);
}

// The four int8s of a word, sign-extended by arithmetic shifts.
fn int8x4(word: u32) -> vec4<f32> {
    let w = i32(word);
    return vec4<f32>(vec4<i32>(w << 24u, w << 16u, w << 8u, w) >> vec4<u32>(24u));
}

@compute @workgroup_size(ROWS * THREADS_PER_ROW)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let local_row = lid / THREADS_PER_ROW;
    let lane = lid % THREADS_PER_ROW;
    let n = wg.x * ROWS + local_row;
    let m = wg.y;
    let blocks = params.k / 16u;
    var acc = 0.0;
    if (n < params.n) {
        let wbase = n * blocks;
        let xbase = x_start() / 4u + m * (params.k / 4u);
        let sbase = n * (params.k / GROUP_SIZE);
        for (var b = lane; b < blocks; b += THREADS_PER_ROW) {
            let w = qweight[wbase + b];
            let xb = xbase + b * 4u;
            let s = dot(x[xb], int8x4(w.x)) + dot(x[xb + 1u], int8x4(w.y))
                  + dot(x[xb + 2u], int8x4(w.z)) + dot(x[xb + 3u], int8x4(w.w));
            acc += s * scale_at(sbase + (b * 16u) / GROUP_SIZE);
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = THREADS_PER_ROW / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    if (lane == 0u && n < params.n) {
        var v = partial[lid];
        if (params.has_bias != 0u) {
            v += bias[n];
        }
        out[out_start() + m * params.n + n] = v;
    }
}
