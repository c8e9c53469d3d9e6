// The shared declarations of the ops over q4 and q8 weights (model/pkg/FORMAT.md), joined
// after each by shaders.Source. Each op binds `scales`: f16 [rows][K / GROUP_SIZE], two to
// a u32, so no shader-f16 is needed to read them. Only f32 here: a module without
// shader-f16 cannot name f16, so the f16 kernels' helpers stay in their own files.
//
// Why the f16 kernels (matmul_q4_f16, matmul_q4_rows_f16, matvec_q4_subgroups_f16) keep
// a main of their own beside their f32 siblings': it is not the same arithmetic in other
// types. They scale each weight in f16 before the products ((q − 8)·s, where
// matmul_q4_rows takes fma(q, s, −8s) and matvec_q4_subgroups scales each 32-weight
// block's sum) and sum each word's products in f16 before adding them in f32
// (matmul_q4_f16 splits its k loop for it). WGSL has no generics or overloads, so one main
// for both would call a per-file function at each of those steps, and the register-blocked
// loops, whose layout the speed on SwiftShader depends on, would no longer read as what
// they compile to. What is the same (Params, store_row, store_rows, scale_at, the q4 codes)
// is shared.

override GROUP_SIZE: u32 = 32u;

fn scale_at(i: u32) -> f32 {
    return f16_in(scales[i / 2u], i);
}

// q4_lo and q4_hi are the codes q of a q4 word's inputs 0–3 and 4–7 (nibble i holds input
// i); the weight is (q − 8)·scale.
fn q4_lo(word: u32) -> vec4<u32> {
    return vec4<u32>(word, word >> 4u, word >> 8u, word >> 12u) & vec4<u32>(15u);
}

fn q4_hi(word: u32) -> vec4<u32> {
    return vec4<u32>(word >> 16u, word >> 20u, word >> 24u, word >> 28u) & vec4<u32>(15u);
}

// dot8 is one q4 word's eight weights, as (q − 8) in two vec4s, dotted with eight inputs.
fn dot8(word: u32, x0: vec4<f32>, x1: vec4<f32>) -> f32 {
    let lo = vec4<f32>(q4_lo(word)) - 8.0;
    let hi = vec4<f32>(q4_hi(word)) - 8.0;
    return dot(x0, lo) + dot(x1, hi);
}

// int8x4 is the four int8s of a q8 word, sign-extended by arithmetic shifts.
fn int8x4(word: u32) -> vec4<f32> {
    let w = i32(word);
    return vec4<f32>(vec4<i32>(w << 24u, w << 16u, w << 8u, w) >> vec4<u32>(24u));
}
