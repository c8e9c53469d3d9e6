package model

import (
	"runtime"

	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// The quantized matrix products of the op list: the CPU twins of the GPU's q4 and q8
// kernels, on the packed form (FORMAT.md). The CPU reference itself runs Matrix.MatMul,
// which dequantizes tiles and sums in MatMul's order; these sum as the kernels do, per
// scale group, so a kernel is compared with arithmetic of its own shape.

// MatMulQ4 computes out[m, n] = x[m, k] · Wᵀ (+ bias) for a q4 weight W [n, k] (qweight
// [n·k/8], f16 scales [n·k/group]). Its arithmetic is float32 in this order: per group,
// s = Σ x·(q − 8) over the group's inputs in order, then acc += s·scale over the groups
// in order, then + bias. bias has length n or is nil.
func MatMulQ4(out, x []float32, qweight []uint32, scales []uint16, bias []float32, m, k, n, group int) {
	matMulQuantized(out, x, scales, bias, m, k, n, group, func(levels []float32, j int) {
		for c := range levels {
			levels[c] = float32(int32(qweight[(j*k+c)/8]>>(4*(c%8))&0xf) - 8)
		}
	})
}

// MatMulQ8 is MatMulQ4 for a q8 weight (qweight [n·k/4]), in the same float32 order.
func MatMulQ8(out, x []float32, qweight []uint32, scales []uint16, bias []float32, m, k, n, group int) {
	matMulQuantized(out, x, scales, bias, m, k, n, group, func(levels []float32, j int) {
		for c := range levels {
			levels[c] = float32(int8(qweight[(j*k+c)/4] >> (8 * (c % 4))))
		}
	})
}

// matMulQuantized is MatMulQ4's and MatMulQ8's order of sums; unpack writes the integer
// levels of weight row j into levels [k]. The weight rows are spread over the cores.
func matMulQuantized(out, x []float32, scales []uint16, bias []float32, m, k, n, group int, unpack func(levels []float32, j int)) {
	workers := runtime.GOMAXPROCS(0)
	if m*n*k < matMulSerialMACs {
		workers = 1
	}
	levels := make([][]float32, min(workers, n))
	for w := range levels {
		levels[w] = make([]float32, k)
	}
	parallelFor(n, workers, func(worker, j int) {
		q := levels[worker]
		unpack(q, j)
		for i := range m {
			xi := x[i*k : (i+1)*k]
			var acc float32
			for gi := range k / group {
				var s float32
				for c := gi * group; c < (gi+1)*group; c++ {
					s += xi[c] * q[c]
				}
				acc += s * quant.F16ToFloat32(scales[j*(k/group)+gi])
			}
			if bias != nil {
				acc += bias[j]
			}
			out[i*n+j] = acc
		}
	})
}
