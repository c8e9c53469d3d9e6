// The subgroup decode products' shared declarations (matvec_q4_subgroups.wgsl,
// matvec_q4_subgroups_f16.wgsl, matvec_q8_subgroups.wgsl; each enables `subgroups`),
// joined after each by shaders.Source.

// ROWS output rows per workgroup, LANES invocations per row (the adapter's subgroup size):
// several rows a workgroup keep a GPU's schedulers fed where one 32-lane workgroup per row
// would cap its occupancy (NVIDIA runs at most 32 workgroups per SM).
override ROWS: u32 = 2u;
override LANES: u32 = 32u;
override THREADS: u32 = ROWS * LANES; // not meant to be set: the workgroup size

var<workgroup> slots: atomic<u32>;
// per subgroup (in the order their elected lanes took a slot), one partial sum per row
var<workgroup> partial: array<f32, THREADS * ROWS>;

// clear_slots empties the slot counter; every invocation calls it first (it has a barrier).
fn clear_slots(lid: u32) {
    if (lid == 0u) {
        atomicStore(&slots, 0u);
    }
    workgroupBarrier();
}

// store_sums sums acc over the lanes of each of the workgroup's rows (invocation lid is in
// row `row`) and writes out[m, r] for the rows r0 + 0 … ROWS − 1 inside the matrix, with
// the bias. Every invocation calls it: it has barriers. A subgroup may hold lanes of
// several rows (nothing promises that subgroups are the LANES-aligned ranges of
// invocations): it sums each row's lanes separately, and one elected lane per subgroup
// writes the sums into the subgroup's slot (subgroups need not be contiguous ranges of
// invocations, so slots are handed out by an atomic counter).
fn store_sums(lid: u32, row: u32, m: u32, r0: u32, acc: f32) {
    var slot = 0u;
    if (subgroupElect()) {
        slot = atomicAdd(&slots, 1u);
    }
    slot = subgroupBroadcastFirst(slot);
    for (var r = 0u; r < ROWS; r++) {
        let sum = subgroupAdd(select(0.0, acc, row == r));
        if (subgroupElect()) {
            partial[slot * ROWS + r] = sum;
        }
    }
    workgroupBarrier();
    if (lid < ROWS && r0 + lid < params.n) {
        var v = 0.0;
        let count = atomicLoad(&slots);
        for (var i = 0u; i < count; i++) {
            v += partial[i * ROWS + lid];
        }
        if (params.has_bias != 0u) {
            v += bias[r0 + lid];
        }
        out[start(params.out_start) + m * params.n + r0 + lid] = v;
    }
}
