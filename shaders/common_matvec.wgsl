// The workgroup-memory decode products' shared declarations (matvec.wgsl, matvec_q4.wgsl,
// matvec_q8.wgsl), joined after each by shaders.Source: ROWS output rows per workgroup,
// THREADS_PER_ROW invocations per row each summing a stride of the row, then a tree
// reduction in workgroup memory.

// ROWS × THREADS_PER_ROW invocations; THREADS_PER_ROW a power of two.
override ROWS: u32 = 4u;
override THREADS_PER_ROW: u32 = 64u;

var<workgroup> partial: array<f32, ROWS * THREADS_PER_ROW>;

// store_sum sums the THREADS_PER_ROW lanes' acc of output row n (invocation lid is lane
// `lane` of it) and writes out[m, n] with the bias. Every invocation calls it: it has
// barriers.
fn store_sum(lid: u32, lane: u32, m: u32, n: u32, acc: f32) {
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
        out[start(params.out_start) + m * params.n + n] = v;
    }
}
