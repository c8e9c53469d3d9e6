//go:build js && wasm

package kernels

import (
	"fmt"

	"github.com/cogvlm-web/cogvlm-web/model"
)

// Embedding gathers rows ids (u32) of an f32 table [vocab, dim]. CPU twin: model.Embedding.
func (k *Kernels) Embedding(out, ids, table Tensor, rows, dim int) (Step, error) {
	s, err := k.step("embedding", PipelineKey{Shader: "embedding.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", rowWG}}},
		params(rows, dim, 0, 0), uint32(rows), 1, 1, ids, table, out)
	if debugTwins {
		s = s.with(twinEmbedding(out, ids, rows, dim, func(rd *reader, id int, dst []float32) {
			model.Embedding(dst, []int{0}, rd.f32(Tensor{Buf: table.Buf, Offset: table.Offset + uint64(4*id*dim)}, dim), dim)
		}))
	}
	return s, err
}

// EmbeddingQ8 gathers rows ids (u32) of a q8 table [vocab, dim]. CPU twin:
// model.EmbeddingQ8.
func (k *Kernels) EmbeddingQ8(out, ids, qweight, scales Tensor, rows, dim, group int) (Step, error) {
	if dim%group != 0 || group%4 != 0 {
		return Step{}, fmt.Errorf("embedding q8: dim %d and group %d unsupported", dim, group)
	}
	s, err := k.step("embedding_q8", PipelineKey{Shader: "embedding_q8.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", rowWG}, {"GROUP_SIZE", float64(group)}}},
		params(rows, dim, 0, 0), uint32(rows), 1, 1, ids, qweight, scales, out)
	if debugTwins {
		s = s.with(twinEmbedding(out, ids, rows, dim, func(rd *reader, id int, dst []float32) {
			q := rd.u32(Tensor{Buf: qweight.Buf, Offset: qweight.Offset + uint64(id*dim)}, dim/4)
			sc := rd.u16(Tensor{Buf: scales.Buf, Offset: scales.Offset + uint64(2*id*dim/group)}, dim/group)
			model.EmbeddingQ8(dst, []int{0}, q, sc, dim, group)
		}))
	}
	return s, err
}

// EmbeddingQ4 gathers rows ids (u32) of a q4 table [vocab, dim]. CPU twin:
// model.EmbeddingQ4.
func (k *Kernels) EmbeddingQ4(out, ids, qweight, scales Tensor, rows, dim, group int) (Step, error) {
	if dim%group != 0 || group%8 != 0 {
		return Step{}, fmt.Errorf("embedding q4: dim %d and group %d unsupported", dim, group)
	}
	s, err := k.step("embedding_q4", PipelineKey{Shader: "embedding_q4.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", rowWG}, {"GROUP_SIZE", float64(group)}}},
		params(rows, dim, 0, 0), uint32(rows), 1, 1, ids, qweight, scales, out)
	if debugTwins {
		s = s.with(twinEmbedding(out, ids, rows, dim, func(rd *reader, id int, dst []float32) {
			q := rd.u32(Tensor{Buf: qweight.Buf, Offset: qweight.Offset + uint64(id*dim/2)}, dim/8)
			sc := rd.u16(Tensor{Buf: scales.Buf, Offset: scales.Offset + uint64(2*id*dim/group)}, dim/group)
			model.EmbeddingQ4(dst, []int{0}, q, sc, dim, group)
		}))
	}
	return s, err
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

// twinEmbedding gathers the rows the GPU gathered on the CPU: row writes table row id,
// read back alone (a table is up to a vocabulary of rows), into dst through the op's twin.
func twinEmbedding(out, ids Tensor, rows, dim int, row func(rd *reader, id int, dst []float32)) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := make([]float32, rows*dim)
		for r, id := range rd.ints(ids, rows) {
			row(rd, id, want[r*dim:][:dim])
		}
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, rows*dim), want }
	}
}
