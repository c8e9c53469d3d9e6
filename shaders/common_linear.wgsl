// The matrix products' shared declarations (matmul*.wgsl, matvec*.wgsl), joined after each
// by shaders.Source: out[m, n] = Σ_k x[m, k] · w[n, k] (+ bias[n]), w laid out [N, K] like
// a PyTorch Linear. Each op binds `params`, `bias` and `out`.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    has_bias: u32,
    x_start: u32,   // x[0, 0] in the x binding (a multiple of 4 where x is read as vec4s)
    out_start: u32, // out[0, 0] in the out binding
}

// store_row writes four outputs of row r from column c on, with the bias, inside the matrix.
fn store_row(r: u32, c: u32, v: vec4<f32>) {
    if (r >= params.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if (c + j < params.n) {
            var o = v[j];
            if (params.has_bias != 0u) {
                o += bias[c + j];
            }
            out[start(params.out_start) + r * params.n + c + j] = o;
        }
    }
}
