package imageproc

import (
	"fmt"
	"image"
)

// jpegToRGB converts what image/jpeg returns. Pillow decodes JPEG with libjpeg-turbo,
// which upsamples subsampled chroma with a triangle filter ("fancy upsampling") and
// converts YCbCr with 16-bit fixed-point tables; Go's YCbCr.At repeats the nearest
// chroma sample and rounds differently, which on a 4:2:0 photo differs from Pillow by
// tens of levels at colour edges. So the YCbCr planes are converted here the libjpeg
// way, and only the inverse DCT (Go's, accurate to about ±1) differs.
func jpegToRGB(m image.Image) (*RGB, error) {
	switch m := m.(type) {
	case *image.YCbCr:
		return jpegYCbCrToRGB(m), nil
	case *image.Gray, *image.CMYK, *image.RGBA:
		// Grey, Adobe CMYK/YCCK (Go has already undone the Adobe inversion, as
		// Pillow's "CMYK;I" raw mode does) and Adobe RGB.
		return toRGB(m), nil
	}
	return nil, fmt.Errorf("image: decoding JPEG: unexpected decoded type %T", m)
}

// libjpeg's YCbCr→RGB tables (jdcolor.c, build_ycc_rgb_table): 16-bit fixed point,
// with the rounding folded into the Cr→R, Cb→B and Cb→G entries.
var ycc = func() (t struct{ crR, cbB, crG, cbG [256]int32 }) {
	const scaleBits = 16
	const half = 1 << (scaleBits - 1)
	fix := func(x float64) int32 { return int32(float64(x*(1<<scaleBits)) + 0.5) }
	for i := range 256 {
		x := int32(i) - 128
		t.crR[i] = (fix(1.40200)*x + half) >> scaleBits
		t.cbB[i] = (fix(1.77200)*x + half) >> scaleBits
		t.crG[i] = -fix(0.71414) * x
		t.cbG[i] = -fix(0.34414)*x + half
	}
	return t
}()

func clamp255(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// chromaUpsampling is how libjpeg-turbo (jdsample.c, jinit_upsampler) brings one
// chroma plane to full resolution.
type chromaUpsampling int

const (
	upsampleNone    chromaUpsampling = iota // 4:4:4
	upsampleNearest                         // int_upsample / h2v*_upsample: replicate
	upsampleH2V1                            // h2v1_fancy_upsample (4:2:2)
	upsampleH2V2                            // h2v2_fancy_upsample (4:2:0)
	upsampleH1V2                            // h1v2_fancy_upsample (4:4:0)
)

// jpegYCbCrToRGB converts Go's decoded JPEG planes to RGB with libjpeg-turbo's default
// decompression settings (do_fancy_upsampling, JDCT_ISLOW tables).
func jpegYCbCrToRGB(m *image.YCbCr) *RGB {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	hs, vs := 1, 1
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs = 2
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		vs = 2
	case image.YCbCrSubsampleRatio411:
		hs = 4
	case image.YCbCrSubsampleRatio410:
		hs, vs = 4, 2
	}
	// The chroma plane's real size: libjpeg's downsampled_width/height. Samples
	// beyond it are block padding, which libjpeg never reads.
	cw, ch := (w+hs-1)/hs, (h+vs-1)/vs
	mode := upsampleNone
	switch {
	case hs == 1 && vs == 1:
	case hs == 2 && vs == 1 && cw > 2:
		mode = upsampleH2V1
	case hs == 2 && vs == 2 && cw > 2:
		mode = upsampleH2V2
	case hs == 1 && vs == 2:
		mode = upsampleH1V2
	default:
		mode = upsampleNearest
	}

	out := &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
	cb := make([]uint8, w)
	cr := make([]uint8, w)
	var sums []int32
	if mode == upsampleH2V2 {
		sums = make([]int32, cw)
	}
	c0 := m.COffset(m.Rect.Min.X, m.Rect.Min.Y)
	for y := 0; y < h; y++ {
		up := chromaRows{mode: mode, hs: hs, vs: vs, cw: cw, ch: ch, stride: m.CStride, base: c0, y: y, sums: sums}
		up.row(cb, m.Cb)
		up.row(cr, m.Cr)
		yrow := m.Y[m.YOffset(m.Rect.Min.X, m.Rect.Min.Y+y):]
		o := out.Pix[y*w*3 : (y+1)*w*3]
		for x := 0; x < w; x++ {
			yy := int32(yrow[x])
			o[x*3] = clamp255(yy + ycc.crR[cr[x]])
			o[x*3+1] = clamp255(yy + (ycc.cbG[cb[x]]+ycc.crG[cr[x]])>>16)
			o[x*3+2] = clamp255(yy + ycc.cbB[cb[x]])
		}
	}
	return out
}

// chromaRows upsamples the chroma of output row y.
type chromaRows struct {
	mode            chromaUpsampling
	hs, vs, cw, ch  int
	stride, base, y int
	sums            []int32 // scratch for upsampleH2V2, len cw
}

// row writes the upsampled chroma of output row r.y into dst (one value per pixel).
// libjpeg replicates the first and last real sample row and column as context, so
// clamping the neighbour index reproduces its edge cases.
func (r chromaRows) row(dst []uint8, plane []uint8) {
	line := func(i int) []uint8 {
		i = max(0, min(i, r.ch-1))
		return plane[r.base+i*r.stride : r.base+i*r.stride+r.cw]
	}
	col := func(c int) int { return max(0, min(c, r.cw-1)) }
	w := len(dst)
	switch r.mode {
	case upsampleNone:
		copy(dst, line(r.y))
	case upsampleNearest:
		in := line(r.y / r.vs)
		for x := range dst {
			dst[x] = in[x/r.hs]
		}
	case upsampleH2V1:
		// Each output pixel is 3/4 of the nearer sample plus 1/4 of the farther,
		// rounded alternately down and up (biases 1 and 2).
		in := line(r.y)
		for x := 0; x < w; x++ {
			c := x / 2
			if x%2 == 0 {
				dst[x] = uint8((3*int32(in[c]) + int32(in[col(c-1)]) + 1) >> 2)
			} else {
				dst[x] = uint8((3*int32(in[c]) + int32(in[col(c+1)]) + 2) >> 2)
			}
		}
	case upsampleH1V2:
		// Vertical 3/4–1/4: an even output row leans on the row above (bias 1),
		// an odd one on the row below (bias 2).
		near := line(r.y / 2)
		far, bias := line(r.y/2-1), int32(1)
		if r.y%2 == 1 {
			far, bias = line(r.y/2+1), 2
		}
		for x := 0; x < w; x++ {
			dst[x] = uint8((3*int32(near[x]) + int32(far[x]) + bias) >> 2)
		}
	case upsampleH2V2:
		// Vertical 3:1 column sums, then horizontal 3:1 of the sums: weights 9, 3,
		// 3, 1 over 16, rounded with biases 8 and 7 alternately.
		near := line(r.y / 2)
		far := line(r.y/2 - 1)
		if r.y%2 == 1 {
			far = line(r.y/2 + 1)
		}
		for c := range r.sums {
			r.sums[c] = 3*int32(near[c]) + int32(far[c])
		}
		for x := 0; x < w; x++ {
			c := x / 2
			if x%2 == 0 {
				dst[x] = uint8((3*r.sums[c] + r.sums[col(c-1)] + 8) >> 4)
			} else {
				dst[x] = uint8((3*r.sums[c] + r.sums[col(c+1)] + 7) >> 4)
			}
		}
	}
}
