package imageproc

import (
	"fmt"
	"image"
)

// webpToRGB converts what golang.org/x/image/webp returns. Lossless WebP decodes to
// NRGBA and is exact. Lossy WebP is VP8 video: limited-range ("studio swing") BT.601
// YCbCr with 4:2:0 chroma, which Go hands back as raw planes in an image.YCbCr whose
// At method would treat them as full-range JPEG data. Pillow decodes with libwebp,
// whose default output upsamples chroma with its "fancy" bilinear filter and converts
// with 14-bit fixed-point arithmetic; both are reproduced here.
func webpToRGB(m image.Image) (*RGB, error) {
	switch m := m.(type) {
	case *image.NRGBA:
		return toRGB(m), nil
	case *image.YCbCr:
		return vp8ToRGB(m)
	case *image.NYCbCrA:
		return vp8ToRGB(&m.YCbCr) // alpha is dropped; libwebp's RGB ignores it
	}
	return nil, fmt.Errorf("image: decoding WebP: unexpected decoded type %T", m)
}

// libwebp's YUV→RGB (src/dsp/yuv.h): multiply-high by 16-bit constants, then a
// 6-bit fixed-point result clipped to 0…255.
func vp8MultHi(v, coeff int32) int32 { return (v * coeff) >> 8 }

func vp8Clip8(v int32) uint8 {
	const yuvFix2 = 6
	const mask = (256 << yuvFix2) - 1
	if v&^mask == 0 {
		return uint8(v >> yuvFix2)
	}
	if v < 0 {
		return 0
	}
	return 255
}

func vp8YUVToRGB(y, u, v int32) (uint8, uint8, uint8) {
	yy := vp8MultHi(y, 19077)
	return vp8Clip8(yy + vp8MultHi(v, 26149) - 14234),
		vp8Clip8(yy - vp8MultHi(u, 6419) - vp8MultHi(v, 13320) + 8708),
		vp8Clip8(yy + vp8MultHi(u, 33050) - 17685)
}

// vp8ToRGB converts 4:2:0 VP8 planes like libwebp's EmitFancyRGB with the
// UpsampleRgbLinePair kernel. Output row y is made from two chroma rows, a = (y+1)/2−1
// and b = (y+1)/2 (clamped to the plane, which is how libwebp mirrors the first and
// last rows): odd rows lean on a, even rows on b, each chroma sample weighted
// 9:3:3:1 between its four nearest samples.
func vp8ToRGB(m *image.YCbCr) (*RGB, error) {
	if m.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		return nil, fmt.Errorf("image: decoding WebP: unexpected chroma subsampling %v", m.SubsampleRatio)
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	cw, ch := (w+1)/2, (h+1)/2
	out := &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
	u := make([]uint8, w)
	v := make([]uint8, w)
	c0 := m.COffset(m.Rect.Min.X, m.Rect.Min.Y)
	line := func(plane []uint8, i int) []uint8 {
		i = max(0, min(i, ch-1))
		return plane[c0+i*m.CStride : c0+i*m.CStride+cw]
	}
	for y := 0; y < h; y++ {
		k := (y + 1) / 2
		top := y%2 == 1
		fancyUpsampleRow(u, line(m.Cb, k-1), line(m.Cb, k), top)
		fancyUpsampleRow(v, line(m.Cr, k-1), line(m.Cr, k), top)
		yrow := m.Y[m.YOffset(m.Rect.Min.X, m.Rect.Min.Y+y):]
		o := out.Pix[y*w*3 : (y+1)*w*3]
		for x := 0; x < w; x++ {
			o[x*3], o[x*3+1], o[x*3+2] = vp8YUVToRGB(int32(yrow[x]), int32(u[x]), int32(v[x]))
		}
	}
	return out, nil
}

// fancyUpsampleRow is one output row of libwebp's UpsampleRgbLinePair for one chroma
// channel: a is the chroma row above the output row's position, b the one below; top
// selects the output row nearer to a. libwebp packs U and V into one uint32 and runs
// this arithmetic on both halves at once; the halves never carry into each other.
func fancyUpsampleRow(dst, a, b []uint8, top bool) {
	w := len(dst)
	// The first pixel, and the last of an even-width row, sit on a chroma column and
	// only mix vertically.
	edge := func(c int) uint8 {
		if top {
			return uint8((3*int32(a[c]) + int32(b[c]) + 2) >> 2)
		}
		return uint8((3*int32(b[c]) + int32(a[c]) + 2) >> 2)
	}
	dst[0] = edge(0)
	for x := 1; x <= (w-1)/2; x++ {
		tl, t, l, c := int32(a[x-1]), int32(a[x]), int32(b[x-1]), int32(b[x])
		avg := tl + t + l + c + 8
		diag12 := (avg + 2*(t+l)) >> 3
		diag03 := (avg + 2*(tl+c)) >> 3
		if top {
			dst[2*x-1] = uint8((diag12 + tl) >> 1)
			dst[2*x] = uint8((diag03 + t) >> 1)
		} else {
			dst[2*x-1] = uint8((diag03 + l) >> 1)
			dst[2*x] = uint8((diag12 + c) >> 1)
		}
	}
	if w%2 == 0 {
		dst[w-1] = edge(w/2 - 1)
	}
}
