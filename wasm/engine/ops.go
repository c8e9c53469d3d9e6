//go:build js && wasm

package engine

import "fmt"

// Workgroup sizes. 256 is the WebGPU default maximum of invocations per workgroup, so
// every adapter runs these.
const (
	elementwiseWG = 256
	rowWG         = 256
	// Grid-stride element-wise kernels cap their grid; any n still works.
	maxElementwiseGroups = 4096
)

func elementwiseGroups(n int) uint32 {
	return uint32(min(maxElementwiseGroups, max(1, (n+elementwiseWG-1)/elementwiseWG)))
}

// Add: out = a + b over n floats. CPU twin: model.Add.
func (k *Kernels) Add(out, a, b Tensor, n int) (Step, error) {
	s, err := k.step("add", PipelineKey{Shader: "add.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(n, 0, 0, 0), elementwiseGroups(n), 1, 1, a, b, out)
	return s.with(twinAdd(out, a, b, n)), err
}

// SiLUMul: out = silu(gate) * up over n floats. CPU twin: model.SiLUMul.
func (k *Kernels) SiLUMul(out, gate, up Tensor, n int) (Step, error) {
	s, err := k.step("silu_mul", PipelineKey{Shader: "silu_mul.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(n, 0, 0, 0), elementwiseGroups(n), 1, 1, gate, up, out)
	return s.with(twinSiLUMul(out, gate, up, n)), err
}

// RMSNorm: out = x / sqrt(mean(x²) + eps) * weight, rows × dim; x and out may start at any
// float. CPU twin: model.RMSNorm.
func (k *Kernels) RMSNorm(out, x, weight Tensor, rows, dim int, eps float32) (Step, error) {
	if rows < 1 || dim < 1 {
		return Step{}, fmt.Errorf("rmsnorm: bad shape %d×%d", rows, dim)
	}
	tw := twinRMSNorm(out, x, weight, rows, dim, eps)
	x, xStart := k.bindFrom(x) // the decoder's last prompt row starts anywhere
	out, outStart := k.bindFrom(out)
	s, err := k.step("rmsnorm", PipelineKey{Shader: "rmsnorm.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", rowWG}, offsets(xStart, outStart)}},
		params(rows, dim, eps, xStart, outStart), uint32(rows), 1, 1, x, weight, out)
	return s.with(tw), err
}

// LayerNorm: out = (x − mean)/sqrt(var + eps) * weight + bias. CPU twin: model.LayerNorm.
func (k *Kernels) LayerNorm(out, x, weight, bias Tensor, rows, dim int, eps float32) (Step, error) {
	if rows < 1 || dim < 1 {
		return Step{}, fmt.Errorf("layernorm: bad shape %d×%d", rows, dim)
	}
	s, err := k.step("layernorm", PipelineKey{Shader: "layernorm.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", rowWG}}},
		params(rows, dim, eps, 0), uint32(rows), 1, 1, x, weight, bias, out)
	return s.with(twinLayerNorm(out, x, weight, bias, rows, dim, eps)), err
}

// RoPE rotates x [rows, heads, headDim] in place, row r at position positions[r], with
// the cos/sin table [maxPos, headDim/2] (see RoPETable). CPU twin: model.RoPE.
func (k *Kernels) RoPE(x, positions, table Tensor, rows, heads, headDim int) (Step, error) {
	if headDim%2 != 0 {
		return Step{}, fmt.Errorf("rope: head_dim %d is odd", headDim)
	}
	pairs := rows * heads * headDim / 2
	s, err := k.step("rope", PipelineKey{Shader: "rope.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(rows, heads, headDim, 0), elementwiseGroups(pairs), 1, 1, positions, table, x)
	return s.with(twinRoPE(x, positions, rows, heads, headDim)), err
}

// GELU applies the exact (erf) GELU in place over n floats. CPU twin: model.GELU.
func (k *Kernels) GELU(x Tensor, n int) (Step, error) {
	s, err := k.step("gelu", PipelineKey{Shader: "gelu.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
		params(n, 0, 0, 0), elementwiseGroups(n), 1, 1, x)
	return s.with(twinGELU(x, n)), err
}

// Embedding gathers rows ids (u32) of an f32 table [vocab, dim]. CPU twin: model.Embedding.
func (k *Kernels) Embedding(out, ids, table Tensor, rows, dim int) (Step, error) {
	s, err := k.step("embedding", PipelineKey{Shader: "embedding.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", rowWG}}},
		params(rows, dim, 0, 0), uint32(rows), 1, 1, ids, table, out)
	row := func(rd *reader, id int) []float32 {
		return rd.f32(Tensor{Buf: table.Buf, Offset: table.Offset + uint64(4*id*dim)}, dim)
	}
	return s.with(twinEmbedding(out, ids, row, rows, dim)), err
}

// Argmax writes the index of the largest of n logits (the lowest on ties) as a u32 to
// result: greedy decoding reads back 4 bytes. CPU twin: model.Sampler, temperature 0.
func (k *Kernels) Argmax(result, logits Tensor, n int) (Step, error) {
	s, err := k.step("argmax", PipelineKey{Shader: "argmax.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", 256}}},
		params(n, 0, 0, 0), 1, 1, 1, logits, result)
	return s.with(twinArgmax(result, logits, n)), err
}

// QKVRoPE splits a fused q/k/v projection [rows, 3, heads, headDim], rotates q and k at
// the rows' positions (u32 buffer) with the cos/sin table, writes q, and writes k and v to
// KV-cache rows state.write_row + r in the cache's precision. CPU twin: model.RoPE and the
// decoder's cache copy.
func (k *Kernels) QKVRoPE(q Tensor, kv KVCache, qkv, positions, table Tensor, state *StepState, rows, heads, headDim int) (Step, error) {
	if headDim < 2 || headDim%2 != 0 {
		return Step{}, fmt.Errorf("qkv rope: head_dim %d is not even", headDim)
	}
	// four dimensions an invocation, or two where half a head is odd (ODD_HALF)
	items, oddHalf := rows*heads*headDim/4, 0.0
	if headDim%4 != 0 {
		items, oddHalf = rows*heads*headDim/2, 1
	}
	s, err := k.step("qkv_rope", PipelineKey{Shader: "qkv_rope.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}, {"F16_KV", kv.f16()}, {"ODD_HALF", oddHalf}}},
		params(rows, heads, headDim, 0), elementwiseGroups(items), 1, 1, qkv, positions, table, q, kv.K, kv.V, state.tensor())
	return s.with(twinQKVRoPE(q, kv, qkv, positions, state, rows, heads, headDim)), err
}
