// Exact GELU in place, x·Φ(x) = x/2·(1 + erf(x/√2)) (EVA2-CLIP and the adapter use the erf
// form, not the tanh approximation). WGSL has no erf: erf_approx is Abramowitz & Stegun
// 7.1.26, absolute error below 1.5e-7. CPU twin: model.GELU.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

fn erf_approx(z: f32) -> f32 {
    let a = abs(z);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let r = 1.0 - poly * exp(-a * a);
    return select(r, -r, z < 0.0);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let stride = groups.x * WORKGROUP_SIZE;
    for (var i = gid.x; i < params.n; i += stride) {
        let v = x[i];
        x[i] = 0.5 * v * (1.0 + erf_approx(v * 0.70710678118654752));
    }
}
