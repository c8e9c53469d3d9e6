//go:build js && wasm

package kernels

import (
	"fmt"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// matVecMaxRows is the largest M for which MatMul uses the matrix-vector kernel: one
// workgroup row per x row reads the weights M times, which is still cheaper than a tile
// that is mostly padding.
const matVecMaxRows = 4

// matVecShape picks a matrix-vector kernel's threads per row for rows of `chunks` loads
// (vec4s or quantized blocks): enough lanes to cover a row in about two loads each, at
// most 64, with the rest of the 256 invocations spent on more rows. Short rows (the tiny
// models, the vocabulary projection of a narrow model) would otherwise leave most lanes
// idle and need thousands of workgroups.
func matVecShape(chunks int) (rows, threadsPerRow int) {
	threadsPerRow = 64
	for threadsPerRow > 4 && threadsPerRow >= chunks {
		threadsPerRow /= 2
	}
	return 256 / threadsPerRow, threadsPerRow
}

// subgroupMatVec is the shape of the subgroup matvecs (matvec_q4_subgroups.wgsl,
// matvec_q8_subgroups.wgsl) for n output rows: their override constants (offs: OFFSETS)
// and workgroup count. LANES per row is the adapter's largest subgroup, so a row is one
// subgroup and its sum one subgroupAdd, 64 where the browser does not say. ROWS per
// workgroup goes up to 4 and 128 invocations: on a GPU several rows a workgroup keep the
// schedulers full (NVIDIA: 4 rows of 32 lanes, where one 32-lane row per workgroup would
// cap occupancy at 32 workgroups per SM), and each subgroup reduces once per row. The
// measurements behind both: bench/README.md, "Kernel choices".
func (k *Kernels) subgroupMatVec(n, group int, offs Const) (consts [4]Const, groups uint32) {
	lanes := k.Dev.Info.SubgroupMaxSize
	if lanes < 4 || lanes > 64 || lanes&(lanes-1) != 0 {
		lanes = 64
	}
	rows := min(4, max(1, 128/lanes))
	return [4]Const{{"ROWS", float64(rows)}, {"LANES", float64(lanes)}, {"GROUP_SIZE", float64(group)}, offs}, uint32((n + rows - 1) / rows)
}

// linearParams binds x and *out from their storage-aligned starts (bindFrom) and returns
// the Params and the OFFSETS override of the quantized matmul kernels, which read x as
// vec4s: x must start at a multiple of 4 floats (every row does, as k is a multiple of
// the 4 or 8 weights per word).
func (k *Kernels) linearParams(out *Tensor, x Tensor, m, kdim, n, hasBias int) (Tensor, []byte, Const, error) {
	x, xStart := k.bindFrom(x)
	if xStart%4 != 0 {
		return Tensor{}, nil, Const{}, fmt.Errorf("matmul: x starts at byte %d of buffer %q, not a multiple of 16 (the kernels read vec4s)", x.Offset+uint64(4*xStart), x.Buf.Label)
	}
	var outStart int
	*out, outStart = k.bindFrom(*out)
	return x, params(m, n, kdim, hasBias, xStart, outStart), offsets(xStart, outStart), nil
}

// biasOrNone returns the bias to bind and the kernels' has_bias flag: the no-bias
// buffer and 0 for the zero Tensor.
func (k *Kernels) biasOrNone(bias Tensor) (Tensor, int, error) {
	if bias.Buf != nil {
		return bias, 1, nil
	}
	none, err := k.noBias()
	return none, 0, err
}

// MatMul computes out[m, n] = x[m, k] · wᵀ (+ bias) with f32 weights [n, k]; bias may be
// the zero Tensor. CPU twin: model.MatMul.
func (k *Kernels) MatMul(out, x, w, bias Tensor, m, kdim, n int) (Step, error) {
	if m < 1 || n < 1 || kdim < 1 {
		return Step{}, fmt.Errorf("matmul: bad shape m=%d k=%d n=%d", m, kdim, n)
	}
	bias, hasBias, err := k.biasOrNone(bias)
	if err != nil {
		return Step{}, err
	}
	var tw twin
	if debugTwins {
		tw = twinMatMul(out, x, bias, hasBias == 1, m, kdim, n, func(rd *reader, want, x, bias []float32) {
			model.MatMul(want, x, rd.f32(w, n*kdim), bias, m, kdim, n)
		})
	}
	x, xStart := k.bindFrom(x)
	out, outStart := k.bindFrom(out)
	p, offs := params(m, n, kdim, hasBias, xStart, outStart), offsets(xStart, outStart)
	if m <= matVecMaxRows && kdim%4 == 0 && xStart%4 == 0 {
		rows, tpr := matVecShape(kdim / 4)
		s, err := k.step("matvec", PipelineKey{Shader: "matvec.wgsl", Consts: [4]Const{{"ROWS", float64(rows)}, {"THREADS_PER_ROW", float64(tpr)}, offs}},
			p, uint32((n+rows-1)/rows), uint32(m), 1, x, w, bias, out)
		return s.with(tw), err
	}
	s, err := k.step("matmul", PipelineKey{Shader: "matmul.wgsl", Consts: [4]Const{offs}},
		p, uint32((n+63)/64), uint32((m+63)/64), 1, x, w, bias, out)
	return s.with(tw), err
}

// PrefillQ4 names the q4 kernel MatMulQ4 uses above matVecMaxRows rows.
type PrefillQ4 int

const (
	// PrefillAuto is the rule in MatMulQ4.
	PrefillAuto PrefillQ4 = iota
	// PrefillTiled is matmul_q4.wgsl: 64×64 tiles staged in workgroup memory.
	PrefillTiled
	// PrefillRows is matmul_q4_rows.wgsl: 16 rows × 4 columns in registers per
	// invocation, no workgroup memory.
	PrefillRows
)

// rowsKernelRows is matmul_q4_rows.wgsl's (and matmul_q8_rows.wgsl's) ROWS: the x rows
// one invocation covers, so the weights are read once per 16 rows.
const rowsKernelRows = 16

// rowsKernelThreads is the rows kernels' workgroup size (THREADS), each invocation 4
// output columns (bench/README.md, "Kernel choices").
const rowsKernelThreads = 64

// rowsKernelGrid is the rows kernels' dispatch: row blocks along x, so the workgroups
// that read the same weight columns run back to back.
func rowsKernelGrid(m, n int) (x, y uint32) {
	return uint32((m + rowsKernelRows - 1) / rowsKernelRows), uint32((n + 4*rowsKernelThreads - 1) / (4 * rowsKernelThreads))
}

// prefillQ4 picks the kernel for m > matVecMaxRows. The register-blocked kernel reads the
// weights once per 16 rows: up to 16 rows that is once (a 64-row tile would be mostly
// padding), and on a CPU adapter, where workgroup memory and barriers are slow, it is
// faster at every M (bench/README.md, "Kernel choices"). It is also the only one for K
// not a multiple of 16. Elsewhere the tiled kernel, which reads each weight once per 64
// rows.
func (k *Kernels) prefillQ4(m, kdim int) PrefillQ4 {
	switch {
	case k.PrefillQ4 != PrefillAuto:
		return k.PrefillQ4
	case m <= rowsKernelRows || kdim%16 != 0 || k.Dev.Info.CPU():
		return PrefillRows
	}
	return PrefillTiled
}

// subgroupsQ4 says whether decode's q4 product reduces with subgroups.
func (k *Kernels) subgroupsQ4(kdim, group int) bool {
	return kdim%32 == 0 && group%32 == 0 && k.Dev.Has(gpu.FeatureSubgroups) && !k.NoSubgroups
}

// q4F16 says whether MatMulQ4 takes an f16 kernel for m rows: where the f16 path is on
// (UsesF16) and there is one — both prefill kernels, and decode's subgroup kernel.
func (k *Kernels) q4F16(m, kdim, group int) bool {
	return k.UsesF16() && (m > matVecMaxRows || k.subgroupsQ4(kdim, group))
}

// MatMulQ4 computes out[m, n] = x[m, k] · Wᵀ (+ bias) for a q4 weight (qweight u32
// [n][k/8], f16 scales [n][k/group]); bias may be the zero Tensor. Decode (m ≤ 4) takes
// the bandwidth-bound matrix-vector kernel, prefill one of two matrix-matrix kernels
// (prefillQ4). CPU twin: model.MatMulQ4.
// The kernels read the x rows as vec4s, so x must start at a multiple of 4 floats.
// Where the adapter has `subgroups`, decode reduces with subgroupAdd instead of
// workgroup-memory trees (matvec_q4_subgroups.wgsl).
func (k *Kernels) MatMulQ4(out, x, qweight, scales, bias Tensor, m, kdim, n, group int) (Step, error) {
	if m < 1 || n < 1 || kdim < 1 || group < 8 || group%8 != 0 || kdim%group != 0 {
		return Step{}, fmt.Errorf("matmul q4: unsupported shape m=%d k=%d n=%d group=%d (the group a multiple of 8 dividing k)", m, kdim, n, group)
	}
	prefill := PrefillAuto
	if m > matVecMaxRows {
		if prefill = k.prefillQ4(m, kdim); prefill == PrefillTiled && kdim%16 != 0 {
			return Step{}, fmt.Errorf("matmul q4: the tiled kernel needs k a multiple of 16, got m=%d k=%d n=%d", m, kdim, n)
		}
	}
	bias, hasBias, err := k.biasOrNone(bias)
	if err != nil {
		return Step{}, err
	}
	subgroups := k.subgroupsQ4(kdim, group)
	half := k.q4F16(m, kdim, group)
	var tw twin
	if debugTwins && half {
		tw = twinMatMulF16(out, x, bias, hasBias == 1, m, kdim, n, deqQ4(qweight, scales, n, kdim, group))
	} else if debugTwins {
		tw = twinMatMul(out, x, bias, hasBias == 1, m, kdim, n, func(rd *reader, want, x, bias []float32) {
			model.MatMulQ4(want, x, rd.u32(qweight, n*kdim/8), rd.u16(scales, n*kdim/group), bias, m, kdim, n, group)
		})
	}
	x, p, offs, err := k.linearParams(&out, x, m, kdim, n, hasBias)
	if err != nil {
		return Step{}, err
	}
	var s Step
	switch {
	case prefill == PrefillRows && half:
		gx, gy := rowsKernelGrid(m, n)
		s, err = k.step("matmul_q4 (rows, f16)", PipelineKey{Shader: "matmul_q4_rows_f16.wgsl", Consts: [4]Const{{"GROUP_SIZE", float64(group)}, {"THREADS", rowsKernelThreads}, offs}},
			p, gx, gy, 1, x, qweight, scales, bias, out)
	case prefill == PrefillTiled && half:
		s, err = k.step("matmul_q4 (f16)", PipelineKey{Shader: "matmul_q4_f16.wgsl", Consts: [4]Const{{"GROUP_SIZE", float64(group)}, offs}},
			p, uint32((n+63)/64), uint32((m+63)/64), 1, x, qweight, scales, bias, out)
	case subgroups && half:
		consts, groups := k.subgroupMatVec(n, group, offs)
		s, err = k.step("matvec_q4 (subgroups, f16)", PipelineKey{Shader: "matvec_q4_subgroups_f16.wgsl", Consts: consts},
			p, groups, uint32(m), 1, x, qweight, scales, bias, out)
	case prefill == PrefillRows:
		gx, gy := rowsKernelGrid(m, n)
		s, err = k.step("matmul_q4 (rows)", PipelineKey{Shader: "matmul_q4_rows.wgsl", Consts: [4]Const{{"GROUP_SIZE", float64(group)}, {"THREADS", rowsKernelThreads}, offs}},
			p, gx, gy, 1, x, qweight, scales, bias, out)
	case prefill == PrefillTiled:
		s, err = k.step("matmul_q4", PipelineKey{Shader: "matmul_q4.wgsl", Consts: [4]Const{{"GROUP_SIZE", float64(group)}, offs}},
			p, uint32((n+63)/64), uint32((m+63)/64), 1, x, qweight, scales, bias, out)
	case subgroups:
		consts, groups := k.subgroupMatVec(n, group, offs)
		s, err = k.step("matvec_q4 (subgroups)", PipelineKey{Shader: "matvec_q4_subgroups.wgsl", Consts: consts},
			p, groups, uint32(m), 1, x, qweight, scales, bias, out)
	default:
		rows, tpr := matVecShape(kdim / 32)
		s, err = k.step("matvec_q4", PipelineKey{Shader: "matvec_q4.wgsl", Consts: [4]Const{{"ROWS", float64(rows)}, {"THREADS_PER_ROW", float64(tpr)}, {"GROUP_SIZE", float64(group)}, offs}},
			p, uint32((n+rows-1)/rows), uint32(m), 1, x, qweight, scales, bias, out, qweight)
	}
	return s.with(tw), err
}

// MatMulQ8 computes out[m, n] = x[m, k] · Wᵀ (+ bias) for a q8 weight (qweight u32
// [n][k/4], f16 scales [n][k/group]): the lm_head of a q4 package, every Linear of a
// `--quant q8` one. Decode (m ≤ 4) takes a matrix-vector kernel, prefill the
// register-blocked matmul_q8_rows.wgsl. x must start at a multiple of 4 floats.
// CPU twin: model.MatMulQ8.
func (k *Kernels) MatMulQ8(out, x, qweight, scales, bias Tensor, m, kdim, n, group int) (Step, error) {
	if m < 1 || n < 1 || kdim < 1 || group < 4 || group%4 != 0 || kdim%group != 0 {
		return Step{}, fmt.Errorf("matmul q8: unsupported shape m=%d k=%d n=%d group=%d (the group a multiple of 4 dividing k)", m, kdim, n, group)
	}
	bias, hasBias, err := k.biasOrNone(bias)
	if err != nil {
		return Step{}, err
	}
	var tw twin
	if debugTwins {
		tw = twinMatMul(out, x, bias, hasBias == 1, m, kdim, n, func(rd *reader, want, x, bias []float32) {
			model.MatMulQ8(want, x, rd.u32(qweight, n*kdim/4), rd.u16(scales, n*kdim/group), bias, m, kdim, n, group)
		})
	}
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

// Linear records out[m, n] = x[m, k] · Wᵀ (+ bias) for a weight of any encoding the
// kernels support.
func (k *Kernels) Linear(out, x Tensor, w Weight, bias *Weight, m int) (Step, error) {
	if len(w.Shape) != 2 {
		return Step{}, fmt.Errorf("%s: not a matrix (shape %v)", w.Name, w.Shape)
	}
	n, kdim := w.Shape[0], w.Shape[1]
	var b Tensor
	if bias != nil {
		if bias.Encoding != quant.F32 {
			return Step{}, fmt.Errorf("%s: bias encoding %s is not supported (want f32)", bias.Name, bias.Encoding)
		}
		b = bias.Data
	}
	switch w.Encoding {
	case quant.F32:
		return k.MatMul(out, x, w.Data, b, m, kdim, n)
	case quant.Q4:
		return k.MatMulQ4(out, x, w.Data, w.Scales, b, m, kdim, n, w.GroupSize)
	case quant.Q8:
		return k.MatMulQ8(out, x, w.Data, w.Scales, b, m, kdim, n, w.GroupSize)
	}
	return Step{}, fmt.Errorf("%s: encoding %s has no GPU matmul yet", w.Name, w.Encoding)
}

// twinMatMul covers every encoding: product runs the op's CPU twin into want [m, n] on
// x [m, k] and bias (nil for none), reading the weight back in its own encoding.
func twinMatMul(out, x, bias Tensor, hasBias bool, m, kdim, n int, product func(rd *reader, want, x, bias []float32)) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		var b []float32
		if hasBias {
			b = rd.f32(bias, n)
		}
		want := make([]float32, m*n)
		product(rd, want, rd.f32(x, m*kdim), b)
		return func(rd *reader) ([]float32, []float32) { return rd.f32(out, m*n), want }
	}
}

// deqQ4 reads a q4 weight back as float32 [n, k] (for MatMulF16).
func deqQ4(q, s Tensor, n, k, g int) func(*reader) []float32 {
	return func(rd *reader) []float32 { return quant.DequantizeQ4(rd.u32(q, n*k/8), rd.u16(s, n*k/g), n, k, g) }
}
