//go:build js && wasm

package kernels

import "fmt"

// Embedding gathers rows ids (u32) of an f32 table [vocab, dim]. CPU twin: model.Embedding.
func (k *Kernels) Embedding(out, ids, table Tensor, rows, dim int) (Step, error) {
	s, err := k.step("embedding", PipelineKey{Shader: "embedding.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", rowWG}}},
		params(rows, dim, 0, 0), uint32(rows), 1, 1, ids, table, out)
	row := func(rd *reader, id int) []float32 {
		return rd.f32(Tensor{Buf: table.Buf, Offset: table.Offset + uint64(4*id*dim)}, dim)
	}
	return s.with(twinEmbedding(out, ids, row, rows, dim)), err
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
