enable subgroups;

// matvec_q8.wgsl's decode product (the lm_head of a q4 package) with subgroup reductions,
// like matvec_q4_subgroups.wgsl: ROWS rows per workgroup of LANES invocations each (the
// adapter's subgroup size), 16 int8 weights per vec4<u32> load, subgroupAdd row by row,
// then one elected lane per subgroup writes the sums into its workgroup slot. K and GROUP_SIZE are multiples of
// 16; other shapes take matvec_q8.wgsl. CPU twin: model.MatMulQ8.
//
// Shared declarations (joined by shaders.Source):
// Params: common_linear.wgsl; ROWS, LANES and the subgroup reduction (clear_slots,
// store_sums): common_subgroups.wgsl; GROUP_SIZE, scale_at and int8x4: common_quant.wgsl.

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
    let blocks = params.k / 16u;
    let wbase = n * blocks;
    let xbase = start(params.x_start) / 4u + m * (params.k / 4u);
    let sbase = n * (params.k / GROUP_SIZE);
    var acc = 0.0;
    for (var b = lane; b < blocks; b += LANES) {
        let w = qweight[wbase + b];
        let xb = xbase + b * 4u;
        let s = dot(x[xb], int8x4(w.x)) + dot(x[xb + 1u], int8x4(w.y))
              + dot(x[xb + 2u], int8x4(w.z)) + dot(x[xb + 3u], int8x4(w.w));
        acc += s * scale_at(sbase + (b * 16u) / GROUP_SIZE);
    }
    store_sums(lid, row, m, wg.x * ROWS, acc);
}
