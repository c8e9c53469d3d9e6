// The register-blocked products' shared declarations (matmul_q4_rows.wgsl,
// matmul_q4_rows_f16.wgsl, matmul_q8_rows.wgsl), joined after each by shaders.Source:
// THREADS invocations per workgroup, each owning COLS output columns and ROWS rows in 16
// named vec4 accumulators (acc0..acc15, not an array: SwiftShader spills indexed private
// arrays to memory).

override THREADS: u32 = 64u;

const COLS = 4u; // output columns per invocation
const ROWS = 16u; // output rows per invocation (acc0..acc15)

// store_rows writes the invocation's 16 rows r0 … r0 + 15 of its columns c0 … c0 + 3
// (store_row: inside the matrix, with the bias).
fn store_rows(r0: u32, c0: u32, acc0: vec4<f32>, acc1: vec4<f32>, acc2: vec4<f32>, acc3: vec4<f32>,
              acc4: vec4<f32>, acc5: vec4<f32>, acc6: vec4<f32>, acc7: vec4<f32>,
              acc8: vec4<f32>, acc9: vec4<f32>, acc10: vec4<f32>, acc11: vec4<f32>,
              acc12: vec4<f32>, acc13: vec4<f32>, acc14: vec4<f32>, acc15: vec4<f32>) {
    store_row(r0 + 0u, c0, acc0);
    store_row(r0 + 1u, c0, acc1);
    store_row(r0 + 2u, c0, acc2);
    store_row(r0 + 3u, c0, acc3);
    store_row(r0 + 4u, c0, acc4);
    store_row(r0 + 5u, c0, acc5);
    store_row(r0 + 6u, c0, acc6);
    store_row(r0 + 7u, c0, acc7);
    store_row(r0 + 8u, c0, acc8);
    store_row(r0 + 9u, c0, acc9);
    store_row(r0 + 10u, c0, acc10);
    store_row(r0 + 11u, c0, acc11);
    store_row(r0 + 12u, c0, acc12);
    store_row(r0 + 13u, c0, acc13);
    store_row(r0 + 14u, c0, acc14);
    store_row(r0 + 15u, c0, acc15);
}
