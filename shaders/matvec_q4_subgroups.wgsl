enable subgroups;

// matvec_q4.wgsl's decode product with subgroup reductions, for adapters with the
// `subgroups` feature: ROWS rows per workgroup, LANES invocations per row striding over
// its 32-weight blocks; each subgroup sums its lanes with subgroupAdd, row by row, and one
// elected lane per subgroup writes the sums into the subgroup's workgroup slot (subgroups
// need not be contiguous ranges of invocations, so slots are handed out by an atomic
// counter). K and GROUP_SIZE are multiples of 32 (CogVLM's are); other shapes take
// matvec_q4.wgsl.
// CPU twin: model.MatMulQ4.
//
// Shared declarations (joined by shaders.Source):
// Params: common_linear.wgsl; ROWS, LANES and the subgroup reduction (clear_slots,
// store_sums): common_subgroups.wgsl; GROUP_SIZE, scale_at and dot8: common_quant.wgsl.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> qweight: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = lid / LANES;
    let lane = lid % LANES;
    let n = min(wg.x * ROWS + row, params.n - 1u); // rows past N redo row N − 1, unstored
    let m = wg.y;
    clear_slots(lid);
    let blocks = params.k / 32u;
    let wbase = n * blocks;
    let xbase = start(params.x_start) / 4u + m * (params.k / 4u);
    let sbase = n * (params.k / GROUP_SIZE);
    var acc = 0.0;
    for (var b = lane; b < blocks; b += LANES) {
        let w = qweight[wbase + b];
        let xb = xbase + b * 8u;
        let s = dot8(w.x, x[xb], x[xb + 1u]) + dot8(w.y, x[xb + 2u], x[xb + 3u])
              + dot8(w.z, x[xb + 4u], x[xb + 5u]) + dot8(w.w, x[xb + 6u], x[xb + 7u]);
        acc += s * scale_at(sbase + (b * 32u) / GROUP_SIZE);
    }
    store_sums(lid, row, m, wg.x * ROWS, acc);
}
