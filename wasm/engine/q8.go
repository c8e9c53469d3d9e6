//go:build js && wasm

package engine

import (
	"fmt"

	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// MatMulQ8 computes out[m, n] = x[m, k] · Wᵀ (+ bias) for a q8 weight (qweight u32
// [n][k/4], f16 scales [n][k/group]): the lm_head of a q4 package, every Linear of a
// `--quant q8` one. Decode (m ≤ 4) takes a matrix-vector kernel, prefill the
// register-blocked matmul_q8_rows.wgsl. x must start at a multiple of 4 floats.
// CPU twin: quant.MatMulQ8.
func (k *Kernels) MatMulQ8(out, x, qweight, scales, bias Tensor, m, kdim, n, group int) (Step, error) {
	if m < 1 || n < 1 || kdim < 1 || group < 4 || group%4 != 0 || kdim%group != 0 {
		return Step{}, fmt.Errorf("matmul q8: unsupported shape m=%d k=%d n=%d group=%d (the group a multiple of 4 dividing k)", m, kdim, n, group)
	}
	bias, hasBias, err := k.biasOrNone(bias)
	if err != nil {
		return Step{}, err
	}
	tw := twinMatMul(out, x, bias, hasBias == 1, m, kdim, n, deqQ8(qweight, scales, n, kdim, group))
	x, p, offs, err := k.linearParams(&out, x, m, kdim, n, hasBias)
	if err != nil {
		return Step{}, err
	}
	// The matrix-vector kernels read blocks of 16 weights under one scale; other shapes (a
	// hidden size that is not a multiple of 16) take the rows kernel at every M.
	if m > matVecMaxRows || kdim%16 != 0 || group%16 != 0 {
		gx, gy := rowsKernelGrid(m, n)
		s, err := k.step("matmul_q8 (rows)", PipelineKey{Shader: "matmul_q8_rows.wgsl", Consts: [4]Const{{"GROUP_SIZE", float64(group)}, {"THREADS", rowsKernelThreads}, offs}},
			p, gx, gy, 1, x, qweight, scales, bias, out)
		return s.with(tw), err
	}
	if k.Dev.Has(gpu.FeatureSubgroups) && !k.NoSubgroups {
		consts, groups := k.subgroupMatVec(n, group, offs)
		s, err := k.step("matvec_q8 (subgroups)", PipelineKey{Shader: "matvec_q8_subgroups.wgsl", Consts: consts},
			p, groups, uint32(m), 1, x, qweight, scales, bias, out)
		return s.with(tw), err
	}
	rows, tpr := matVecShape(kdim / 16)
	s, err := k.step("matvec_q8", PipelineKey{Shader: "matvec_q8.wgsl", Consts: [4]Const{{"ROWS", float64(rows)}, {"THREADS_PER_ROW", float64(tpr)}, {"GROUP_SIZE", float64(group)}, offs}},
		p, uint32((n+rows-1)/rows), uint32(m), 1, x, qweight, scales, bias, out)
	return s.with(tw), err
}

// EmbeddingQ8 gathers rows ids (u32) of a q8 table [vocab, dim]. CPU twin:
// model.Embedding over quant.DequantizeQ8.
func (k *Kernels) EmbeddingQ8(out, ids, qweight, scales Tensor, rows, dim, group int) (Step, error) {
	if dim%group != 0 || group%4 != 0 {
		return Step{}, fmt.Errorf("embedding q8: dim %d and group %d unsupported", dim, group)
	}
	s, err := k.step("embedding_q8", PipelineKey{Shader: "embedding_q8.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", rowWG}, {"GROUP_SIZE", float64(group)}}},
		params(rows, dim, 0, 0), uint32(rows), 1, 1, ids, qweight, scales, out)
	row := func(rd *reader, id int) []float32 {
		q := Tensor{Buf: qweight.Buf, Offset: qweight.Offset + uint64(id*dim)}
		sc := Tensor{Buf: scales.Buf, Offset: scales.Offset + uint64(2*id*dim/group)}
		// a row's bytes may start off a 4-byte boundary: read the aligned words around it
		return deqQ8Row(rd, q, sc, dim, group)
	}
	return s.with(twinEmbedding(out, ids, row, rows, dim)), err
}

// EmbeddingQ4 gathers rows ids (u32) of a q4 table [vocab, dim]. CPU twin:
// model.Embedding over quant.DequantizeQ4.
func (k *Kernels) EmbeddingQ4(out, ids, qweight, scales Tensor, rows, dim, group int) (Step, error) {
	if dim%group != 0 || group%8 != 0 {
		return Step{}, fmt.Errorf("embedding q4: dim %d and group %d unsupported", dim, group)
	}
	s, err := k.step("embedding_q4", PipelineKey{Shader: "embedding_q4.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", rowWG}, {"GROUP_SIZE", float64(group)}}},
		params(rows, dim, 0, 0), uint32(rows), 1, 1, ids, qweight, scales, out)
	row := func(rd *reader, id int) []float32 {
		q := Tensor{Buf: qweight.Buf, Offset: qweight.Offset + uint64(id*dim/2)}
		sc := Tensor{Buf: scales.Buf, Offset: scales.Offset + uint64(2*id*dim/group)}
		return deqQ4Row(rd, q, sc, dim, group)
	}
	return s.with(twinEmbedding(out, ids, row, rows, dim)), err
}

// Embed records the embedding gather for a table of any supported encoding (f16 tables
// are f32 on the GPU: the loader expands them).
func (k *Kernels) Embed(out, ids Tensor, table Weight, rows int) (Step, error) {
	dim := table.Shape[1]
	switch table.Encoding {
	case "f32":
		return k.Embedding(out, ids, table.Data, rows, dim)
	case "q8":
		return k.EmbeddingQ8(out, ids, table.Data, table.Scales, rows, dim, table.GroupSize)
	case "q4":
		return k.EmbeddingQ4(out, ids, table.Data, table.Scales, rows, dim, table.GroupSize)
	}
	return Step{}, fmt.Errorf("%s: encoding %s has no GPU embedding yet", table.Name, table.Encoding)
}
