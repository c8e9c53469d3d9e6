// Package gptq is GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for
// Generative Pre-trained Transformers", 2022), the converter's calibrated q4: it chooses a
// Linear layer's q4 levels to minimise the error of its outputs on calibration inputs X,
// ‖X·Wᵀ − X·Ŵᵀ‖², instead of the error of the weights. Row by row the loss is
// (w − ŵ)·H·(w − ŵ)ᵀ with H = XᵀX (up to a positive factor), so after a column is rounded,
// the rest of the row is corrected, through H⁻¹, for the part of that rounding error the
// later columns can absorb. The result is stored exactly as quant.QuantizeQ4Into's (same qweight and
// scales layout, value (q − 8)·scale): only the choice of levels and scales differs. Here:
// columns in order (no act-order); a group's scale fixed when its first column is reached,
// from its corrected weights, among quant.QuantizeQ4Into's candidates by GPTQ's own loss
// (groupScale); lazy batch updates of blocks of columns. Native only (model/pkg's
// calibration): the browser never imports it.
package gptq

import (
	"fmt"
	"math"

	"github.com/cogvlm-web/cogvlm-web/model/internal/parallel"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// DefaultDamp is the damping GPTQ adds to H's diagonal, as a fraction of its mean: it
// keeps H invertible when the calibration rows do not span every input direction.
const DefaultDamp = 0.01

// blockColumns is the number of columns whose corrections are applied lazily, to the
// rest of the row, in one matrix product (rounded up to a multiple of the group size, so
// that a group never spans two blocks).
const blockColumns = 128

// tileRows is the number of weight rows processed together: they share each load of the
// factor of H⁻¹.
const tileRows = 16

// Hessian accumulates H = XᵀX over the input rows X of one Linear layer: the matrix
// QuantizeQ4 takes. Rows is the number of rows added.
type Hessian struct {
	K    int
	Rows int
	H    []float64 // [K, K], row-major, symmetric
}

// NewHessian returns an empty Hessian for a layer with k inputs.
func NewHessian(k int) *Hessian {
	return &Hessian{K: k, H: make([]float64, k*k)}
}

// Add adds the rows x [rows, K] to H, in float64. Slices of the wrong length panic.
func (h *Hessian) Add(x []float32, rows int) {
	k := h.K
	mustLen("x", len(x), rows*k)
	_ = parallel.Rows(k, rows*k, func(i0, i1 int) error {
		for r := range rows {
			xr := x[r*k : (r+1)*k]
			for i := i0; i < i1; i++ {
				xi := float64(xr[i])
				if xi == 0 {
					continue
				}
				hi := h.H[i*k : i*k+i+1] // the lower triangle; mirrored below
				for j := range hi {
					hi[j] += xi * float64(xr[j])
				}
			}
		}
		for i := i0; i < i1; i++ {
			for j := range i {
				h.H[j*k+i] = h.H[i*k+j]
			}
		}
		return nil
	})
	h.Rows += rows
}

// QuantizeQ4 quantizes the [n, k] matrix w to q4 with groups of g inputs, minimising the
// output error on the inputs whose XᵀX is h ([k, k]), with DefaultDamp; see QuantizeQ4Into.
func QuantizeQ4(w []float32, n, k, g int, h []float64) (qweight []uint32, scales []uint16, err error) {
	if err := quant.CheckGroups(quant.Q4, n, k, g); err != nil {
		return nil, nil, err
	}
	qweight, scales = make([]uint32, n*k/8), make([]uint16, n*k/g)
	if err := QuantizeQ4Into(qweight, scales, w, n, k, g, h, DefaultDamp); err != nil {
		return nil, nil, err
	}
	return qweight, scales, nil
}

// QuantizeQ4Into is quant.QuantizeQ4Into with GPTQ's choice of levels and scales: h is XᵀX
// of the layer's calibration inputs X (any positive multiple: the result does not depend
// on the factor), [k, k] row-major, symmetric positive semi-definite; damp·mean(diag h) is
// added to its diagonal (damp > 0). An input that is zero in every calibration row (h's
// diagonal 0) is rounded to nearest and passes no error on: the calibration says nothing
// about it (the paper's code zeroes its weights instead, which only holds for inputs that
// are zero forever). With h a multiple of the identity the result is QuantizeQ4Into's
// exactly. A NaN or Inf weight is an error naming its [row, column], as is a weight or a
// corrected weight beyond the q4 range; a malformed h (wrong size, not finite, not symmetric, a
// negative diagonal) or one that is not positive definite after damping is an error.
// Slices w, qweight and scales of the wrong length panic. Rows are spread over GOMAXPROCS
// goroutines in tiles; the cost is about 2·n·k² flops for the corrections and k³ for
// factoring h.
func QuantizeQ4Into(qweight []uint32, scales []uint16, w []float32, n, k, g int, h []float64, damp float64) error {
	if err := quant.CheckGroups(quant.Q4, n, k, g); err != nil {
		return err
	}
	mustLen("w", len(w), n*k)
	mustLen("qweight", len(qweight), n*k/8)
	mustLen("scales", len(scales), n*k/g)
	if err := parallel.Rows(n, k, func(r0, r1 int) error {
		for r := r0; r < r1; r++ {
			for c := 0; c < k; c += g {
				if err := quant.CheckQ4Group(w[r*k+c:r*k+c+g], r, c); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		return err
	}
	u, err := factor(h, k, damp)
	if err != nil {
		return err
	}
	block := (blockColumns + g - 1) / g * g
	return parallel.Rows((n+tileRows-1)/tileRows, tileRows*k*k, func(t0, t1 int) error {
		rows := make([][]float64, tileRows) // the tile's weights, corrected as columns are rounded
		for i := range rows {
			rows[i] = make([]float64, k)
		}
		errs := make([]float64, tileRows*block) // [row][column in block]: scaled rounding errors
		group, trial := make([]float32, g), make([]float64, g)
		q := make([]int8, g)
		for t := t0; t < t1; t++ {
			first, tile := t*tileRows, min(tileRows, n-t*tileRows)
			for i := range tile {
				for c, v := range w[(first+i)*k : (first+i+1)*k] {
					rows[i][c] = float64(v)
				}
			}
			for b0 := 0; b0 < k; b0 += block {
				b1 := min(b0+block, k)
				for c := b0; c < b1; c++ {
					ucc, ucRow := u[c*k+c], u[c*k+c+1:c*k+b1]
					for i := range tile {
						r, row := first+i, rows[i]
						if c%g == 0 { // the group's scale, from its corrected weights
							for j := range group {
								group[j] = float32(row[c+j])
							}
							if err := quant.CheckQ4Group(group, r, c); err != nil {
								return fmt.Errorf("after GPTQ's corrections: %v", err) // a correction overflowed
							}
							scales[r*(k/g)+c/g] = groupScale(row[c:c+g], group, trial, q, u, c, k)
						}
						d := quant.F16ToFloat32(scales[r*(k/g)+c/g])
						var level float32
						if d != 0 {
							level = quant.Q4Level(float32(row[c]), 1/d)
						}
						word := &qweight[(r*k+c)/8]
						*word = *word&^(0xf<<(4*(c%8))) | uint32(level+8)<<(4*(c%8))
						e := (row[c] - float64(level*d)) / ucc
						errs[i*block+c-b0] = e
						rest := row[c+1 : b1]
						for j, uv := range ucRow {
							rest[j] -= e * uv
						}
					}
				}
				// lazy batch update: the rest of each row absorbs the block's errors
				if b1 == k {
					continue
				}
				for c := b0; c < b1; c++ {
					uRest := u[c*k+b1 : (c+1)*k]
					for i := range tile {
						e := errs[i*block+c-b0]
						if e == 0 {
							continue
						}
						rest := rows[i][b1:]
						for j, uv := range uRest {
							rest[j] -= e * uv
						}
					}
				}
			}
		}
		return nil
	})
}

// factor checks h and returns U, the upper-triangular Cholesky factor of the inverse
// of the damped H (H⁻¹ = UᵀU, [k, k] row-major, zeros below the diagonal). The diagonal
// of an input no calibration row reached is set to 1 before damping, which decouples it.
func factor(h []float64, k int, damp float64) (u []float64, err error) {
	if len(h) != k*k {
		return nil, fmt.Errorf("hessian has %d elements, want %d×%d", len(h), k, k)
	}
	if !(damp > 0) || math.IsInf(damp, 0) {
		return nil, fmt.Errorf("damping %g must be a positive fraction of the hessian's mean diagonal", damp)
	}
	a := make([]float64, k*k)
	copy(a, h)
	var mean float64
	for i := range k {
		for j := range i + 1 {
			x, y := h[i*k+j], h[j*k+i]
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("hessian [%d, %d] is %g", i, j, x)
			}
			if x != y && math.Abs(x-y) > 1e-9*(math.Abs(x)+math.Abs(y)) {
				return nil, fmt.Errorf("hessian is not symmetric: [%d, %d] = %g but [%d, %d] = %g", i, j, x, j, i, y)
			}
		}
		switch d := h[i*k+i]; {
		case d < 0:
			return nil, fmt.Errorf("hessian diagonal [%d, %d] = %g is negative", i, i, d)
		case d == 0:
			a[i*k+i] = 1
		}
		mean += a[i*k+i]
	}
	mean /= float64(k)
	for i := range k {
		a[i*k+i] += damp * mean
	}
	// H = L̃·L̃ᵀ with L̃ upper triangular (Cholesky from the last index down); then
	// H⁻¹ = L̃⁻ᵀ·L̃⁻¹, so U = L̃⁻¹, upper triangular with a positive diagonal: the unique
	// upper Cholesky factor of H⁻¹. One factorisation and one triangular inverse, instead
	// of inverting H and factoring the inverse.
	lt := a // the factor overwrites H's upper triangle
	for j := k - 1; j >= 0; j-- {
		rowJ := lt[j*k : (j+1)*k]
		s := rowJ[j]
		for m := j + 1; m < k; m++ {
			s -= rowJ[m] * rowJ[m]
		}
		if !(s > 0) {
			return nil, fmt.Errorf("hessian is not positive definite after damping %g (pivot %d): is it XᵀX of real inputs?", damp, j)
		}
		rowJ[j] = math.Sqrt(s)
		inv := 1 / rowJ[j]
		for i := range j {
			rowI := lt[i*k : (i+1)*k]
			s := rowI[j]
			for m := j + 1; m < k; m++ {
				s -= rowI[m] * rowJ[m]
			}
			rowI[j] = s * inv
		}
	}
	// U = L̃⁻¹ by back substitution, row by row from the last: L̃ᵢᵢ·Uᵢ = eᵢ − Σ_{m>i} L̃ᵢₘ·Uₘ
	// (row m of U is zero before column m)
	u = make([]float64, k*k)
	for i := k - 1; i >= 0; i-- {
		ui, inv := u[i*k:(i+1)*k], 1/lt[i*k+i]
		ui[i] = inv
		for m := i + 1; m < k; m++ {
			if f := lt[i*k+m] * inv; f != 0 {
				for c, v := range u[m*k+m : (m+1)*k] {
					ui[m+c] -= f * v
				}
			}
		}
	}
	return u, nil
}

// groupScale picks the scale of the group whose corrected weights are row (its g columns
// start at column c), group being their float32 copy: among quant.QuantizeQ4Into's
// candidates (quant.Q4ScaleCandidates, and its own choice, quant.Q4GroupScale), the one whose rounding of
// the group, with GPTQ's corrections within the group, adds the least to the layer's
// output error, Σ ((w − ŵ)/U_jj)² over the group's columns j (the loss GPTQ's column
// updates leave behind). trial and q are scratch of the group's length.
func groupScale(row []float64, group []float32, trial []float64, q []int8, u []float64, c, k int) uint16 {
	best := quant.Q4GroupScale(group, q)
	if best == 0 {
		return 0
	}
	tmp := trial
	loss := func(h uint16) float64 {
		d := quant.F16ToFloat32(h)
		if d == 0 || math.IsInf(float64(d), 0) || math.IsNaN(float64(d)) {
			return math.Inf(1)
		}
		inv := 1 / d
		copy(tmp, row)
		var sum float64
		for j := range tmp {
			l := quant.Q4Level(float32(tmp[j]), inv)
			e := (tmp[j] - float64(l*d)) / u[(c+j)*k+c+j]
			sum += e * e
			for i, uv := range u[(c+j)*k+c+j+1 : (c+j)*k+c+len(row)] {
				tmp[j+1+i] -= e * uv
			}
		}
		return sum
	}
	bestLoss := loss(best)
	for _, h := range quant.Q4ScaleCandidates(group) {
		if l := loss(h); l < bestLoss {
			best, bestLoss = h, l
		}
	}
	return best
}

// mustLen panics with a readable message when a caller passes slices of the wrong size, as
// model/quant's functions do: sizes come from shapes the caller has already validated.
func mustLen(what string, got, want int) {
	if got != want {
		panic(fmt.Sprintf("gptq: %s has length %d, want %d", what, got, want))
	}
}
