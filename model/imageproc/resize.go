package imageproc

import (
	"fmt"
	"math"
)

// ResizeBicubic resizes src to w×h exactly as Pillow's Image.resize((w, h), BICUBIC)
// does for an 8-bit RGB image (libImaging/Resample.c, ImagingResample):
//
//   - separable convolution with the cubic kernel a = -0.5, support 2 input pixels
//     when enlarging and 2·scale when shrinking (the kernel is stretched, which is
//     Pillow's antialiasing);
//   - per output pixel the weights are computed in float64, normalised to sum 1,
//     then rounded to 22-bit fixed point and accumulated in int32;
//   - the horizontal pass runs first (only over the source rows the vertical pass
//     will read) and is rounded and clipped to 8 bits before the vertical pass;
//   - a pass whose size does not change is skipped, and equal sizes return a copy.
//
// The result is bit-exact to Pillow's on every platform Go runs on: the float
// expressions are written with explicit conversions so that Go never fuses them into
// FMA instructions (checked in the arm64, ppc64le, s390x and riscv64 assembly;
// Pillow's x86-64 builds do not fuse either). The weight tables take about 16 bytes
// per source column and row.
//
// w and h must be positive and src must be a valid image; anything else is a
// programming error and panics, as a negative count does in strings.Repeat.
func ResizeBicubic(src *RGB, w, h int) *RGB {
	if err := src.check(); err != nil {
		panic("imageproc: ResizeBicubic: " + err.Error())
	}
	if w <= 0 || h <= 0 {
		panic(fmt.Sprintf("imageproc: ResizeBicubic: target size %dx%d is not positive", w, h))
	}
	if w == src.W && h == src.H {
		// Pillow returns im.copy() here without resampling.
		return &RGB{W: w, H: h, Pix: append([]uint8(nil), src.Pix...)}
	}

	if w == src.W {
		return resampleVertical(src, newFilterTaps(src.H, h))
	}
	horiz := newFilterTaps(src.W, w)
	if h == src.H {
		return resampleHorizontal(src, horiz, 0, src.H)
	}
	// The vertical pass reads only source rows [y0, y1): resample just those
	// horizontally and renumber the vertical taps to index the intermediate image.
	vert := newFilterTaps(src.H, h)
	y0, y1 := vert.first[0], vert.first[h-1]+vert.count[h-1]
	for i := range vert.first {
		vert.first[i] -= y0
	}
	return resampleVertical(resampleHorizontal(src, horiz, y0, y1-y0), vert)
}

// precisionBits is Pillow's PRECISION_BITS: 32 bits of int minus 8 for the pixel value
// minus 2 for the kernel's negative lobes and overshoot.
const precisionBits = 32 - 8 - 2

// cubicA is the "a" of the Keys cubic convolution kernel Pillow uses for BICUBIC.
const cubicA = -0.5

// cubicSupport is the kernel's radius in input pixels at scale 1.
const cubicSupport = 2.0

// bicubic is the Keys cubic convolution kernel with a = -0.5, with Pillow's operation
// order (bicubic_filter). The float64 conversions forbid fused multiply-adds, which
// would change the last bit and with it, now and then, a rounded coefficient.
func bicubic(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		t := float64((cubicA+2)*x) - (cubicA + 3)
		return float64(float64(t*x)*x) + 1
	}
	if x < 2 {
		t := float64((x-5)*x) + 8
		t = float64(t*x) - 4
		return float64(t * cubicA)
	}
	return 0
}

// taps are the fixed-point convolution weights of one resampling pass: output pixel i
// reads count[i] consecutive input pixels starting at first[i], weighted by
// coef[i*stride : i*stride+count[i]].
type taps struct {
	first, count []int
	stride       int
	coef         []int32
}

// newFilterTaps computes the weights for resampling inSize pixels to outSize pixels,
// following Pillow's precompute_coeffs and normalize_coeffs_8bpc for the whole-image
// box (0, inSize).
func newFilterTaps(inSize, outSize int) taps {
	// Pillow passes the box edges as float32; float32(inSize) is exact below 2^24 and
	// rounds like Pillow's above.
	scale := float64(float32(inSize)) / float64(outSize)
	filterScale := scale
	if filterScale < 1 {
		filterScale = 1 // enlarging: plain interpolation, no antialiasing
	}
	support := cubicSupport * filterScale
	stride := int(math.Ceil(support))*2 + 1

	t := taps{
		first:  make([]int, outSize),
		count:  make([]int, outSize),
		stride: stride,
		coef:   make([]int32, outSize*stride),
	}
	weights := make([]float64, stride)
	inv := 1 / filterScale
	for i := 0; i < outSize; i++ {
		center := float64(float64(float64(i)+0.5) * scale)
		// Pillow rounds the window ends by adding 0.5 and truncating toward zero.
		lo := int(center - support + 0.5)
		if lo < 0 {
			lo = 0
		}
		hi := int(center + support + 0.5)
		if hi > inSize {
			hi = inSize
		}
		n := hi - lo
		sum := 0.0
		for k := 0; k < n; k++ {
			wk := bicubic(float64(float64(float64(k+lo)-center+0.5) * inv))
			weights[k] = wk
			sum += wk
		}
		row := t.coef[i*stride : i*stride+n]
		for k := range row {
			wk := weights[k]
			if sum != 0 {
				wk /= sum
			}
			// Round half away from zero to 22-bit fixed point. Scaling by a power of
			// two is exact, so this is the only rounding.
			if wk < 0 {
				row[k] = int32(-0.5 + float64(wk*(1<<precisionBits)))
			} else {
				row[k] = int32(0.5 + float64(wk*(1<<precisionBits)))
			}
		}
		t.first[i], t.count[i] = lo, n
	}
	return t
}

// clip8 turns an accumulator (which starts at half a unit, so this rounds) into a
// pixel value, saturating like Pillow's clip8 lookup table.
func clip8(acc int32) uint8 {
	v := acc >> precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// resampleHorizontal resamples rows [y0, y0+rows) of src to width len(t.first).
func resampleHorizontal(src *RGB, t taps, y0, rows int) *RGB {
	w := len(t.first)
	dst := &RGB{W: w, H: rows, Pix: make([]uint8, w*rows*3)}
	for y := 0; y < rows; y++ {
		in := src.Pix[(y0+y)*src.W*3 : (y0+y+1)*src.W*3]
		out := dst.Pix[y*w*3 : (y+1)*w*3]
		for x := 0; x < w; x++ {
			k := t.coef[x*t.stride : x*t.stride+t.count[x]]
			p := in[t.first[x]*3 : (t.first[x]+len(k))*3]
			r, g, b := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
			for j, c := range k {
				r += int32(p[j*3]) * c
				g += int32(p[j*3+1]) * c
				b += int32(p[j*3+2]) * c
			}
			out[x*3], out[x*3+1], out[x*3+2] = clip8(r), clip8(g), clip8(b)
		}
	}
	return dst
}

// resampleVertical resamples src to height len(t.first); t.first indexes rows of src.
func resampleVertical(src *RGB, t taps) *RGB {
	h := len(t.first)
	rowLen := src.W * 3
	dst := &RGB{W: src.W, H: h, Pix: make([]uint8, rowLen*h)}
	acc := make([]int32, rowLen)
	for y := 0; y < h; y++ {
		for i := range acc {
			acc[i] = 1 << (precisionBits - 1)
		}
		// Row by row over the taps keeps the inner loop on contiguous memory; the sum
		// per pixel is the same integer sum in the same order as Pillow's.
		for j, c := range t.coef[y*t.stride : y*t.stride+t.count[y]] {
			in := src.Pix[(t.first[y]+j)*rowLen : (t.first[y]+j+1)*rowLen]
			for i, v := range in {
				acc[i] += int32(v) * c
			}
		}
		out := dst.Pix[y*rowLen : (y+1)*rowLen]
		for i, a := range acc {
			out[i] = clip8(a)
		}
	}
	return dst
}
