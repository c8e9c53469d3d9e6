// Matrix-vector product for decode, f32 weights: out[m, n] = Σ_k x[m, k] · w[n, k]
// (+ bias[n]) for a few rows m (one per workgroup row of the grid). Bandwidth-bound: each
// workgroup streams ROWS rows of w with vec4 loads, THREADS_PER_ROW invocations per row,
// then reduces in workgroup memory. K must be a multiple of 4 (every hidden size is).
// CPU twin: model.MatMul.

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

// ROWS × THREADS_PER_ROW invocations; THREADS_PER_ROW a power of two.
override ROWS: u32 = 4u;
override THREADS_PER_ROW: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, ROWS * THREADS_PER_ROW>;

@compute @workgroup_size(ROWS * THREADS_PER_ROW)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let local_row = lid / THREADS_PER_ROW;
    let lane = lid % THREADS_PER_ROW;
    let n = wg.x * ROWS + local_row;
    let m = wg.y;
    let k4 = params.k / 4u;
    var acc = 0.0;
    if (n < params.n) {
        let wbase = n * k4;
        let xbase = x_start() / 4u + m * k4;
        for (var i = lane; i < k4; i += THREADS_PER_ROW) {
            acc += dot(x[xbase + i], w[wbase + i]);
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
