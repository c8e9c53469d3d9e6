// Declarations every op shares. shaders.Source joins this file, then the op's family files
// (common_*.wgsl), after the op's own file into one module: plain WGSL, where module-scope
// declarations may come in any order, so an op's `enable` directives stay first and the
// lines of its file keep their numbers. Only what every op compiles with belongs here; a
// declaration that names an op's bindings or Params goes in a family file.

// OFFSETS is set where a binding starts between storage-aligned offsets (bindFrom); unset,
// every start is the constant 0 and a kernel compiles as if it had none. A pipeline sets it
// only for the kernels that read their starts; the others never use it.
override OFFSETS: bool = false;

// start is a binding's first element, given the Params field that holds it (x_start,
// out_start, …): 0 unless OFFSETS.
fn start(field: u32) -> u32 {
    return select(0u, field, OFFSETS);
}

// The per-step values shared by every kernel of a plan (StepState): attention reads kv_rows,
// qkv_rope writes the KV cache from write_row.
struct Step {
    kv_rows: u32,   // valid KV-cache rows after this step's writes
    write_row: u32, // first KV-cache row this step writes
    _pad0: u32,
    _pad1: u32,
}

// Below every score and logit: the start of a running maximum.
const NEG_INF = -3.0e38;

// f16_in is element i of an f16 array stored two to a u32 (element 2w in the low half of
// word w, as pack2x16float writes them), given its word, word i / 2.
fn f16_in(word: u32, i: u32) -> f32 {
    let pair = unpack2x16float(word);
    return select(pair.x, pair.y, (i & 1u) == 1u);
}
