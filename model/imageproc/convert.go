package imageproc

import (
	"image"
	"image/color"
)

// toRGB converts a decoded image to RGB following Pillow's convert('RGB'): alpha is
// dropped (straight colour kept), grey replicated, palette entries looked up, 16-bit
// channels reduced to their high byte. Bounds need not start at (0, 0).
func toRGB(m image.Image) *RGB {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	out := &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
	// set writes pixel (x, y) counted from the top-left of b.
	set := func(x, y int, r, g, bl uint8) {
		i := (y*w + x) * 3
		out.Pix[i], out.Pix[i+1], out.Pix[i+2] = r, g, bl
	}
	switch m := m.(type) {
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				set(x, y, row[x*4], row[x*4+1], row[x*4+2])
			}
		}
	case *image.RGBA:
		// Go's decoders only produce premultiplied RGBA for opaque images; for the
		// rest, undo the premultiplication as well as 8 bits allow.
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				p := row[x*4 : x*4+4]
				set(x, y, unpremultiply8(p[0], p[3]), unpremultiply8(p[1], p[3]), unpremultiply8(p[2], p[3]))
			}
		}
	case *image.NRGBA64:
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				// Big-endian 16-bit samples: the high byte comes first.
				set(x, y, row[x*8], row[x*8+2], row[x*8+4])
			}
		}
	case *image.RGBA64:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := m.RGBA64At(b.Min.X+x, b.Min.Y+y)
				set(x, y, unpremultiply16(c.R, c.A), unpremultiply16(c.G, c.A), unpremultiply16(c.B, c.A))
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				set(x, y, row[x], row[x], row[x])
			}
		}
	case *image.Gray16:
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				set(x, y, row[x*2], row[x*2], row[x*2])
			}
		}
	case *image.Paletted:
		lut := paletteRGB(m.Palette)
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				c := lut[row[x]]
				set(x, y, c[0], c[1], c[2])
			}
		}
	case *image.CMYK:
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				p := row[x*4 : x*4+4]
				r, g, bl := cmykToRGB(p[0], p[1], p[2], p[3])
				set(x, y, r, g, bl)
			}
		}
	case *image.YCbCr:
		return jpegYCbCrToRGB(m)
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(m.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				set(x, y, c.R, c.G, c.B)
			}
		}
	}
	return out
}

// paletteRGB returns the straight RGB of every palette index. Indices past the end of
// the palette read as black.
func paletteRGB(p color.Palette) *[256][3]uint8 {
	var lut [256][3]uint8
	for i, c := range p {
		if i == len(lut) {
			break
		}
		switch c := c.(type) {
		case nil: // no decoder leaves holes, but a nil colour must not panic
		case color.NRGBA: // PNG palettes with tRNS: the straight colour is stored as is
			lut[i] = [3]uint8{c.R, c.G, c.B}
		case color.RGBA:
			lut[i] = [3]uint8{unpremultiply8(c.R, c.A), unpremultiply8(c.G, c.A), unpremultiply8(c.B, c.A)}
		default:
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			lut[i] = [3]uint8{n.R, n.G, n.B}
		}
	}
	return &lut
}

// unpremultiply8 recovers a straight 8-bit channel from a premultiplied one.
func unpremultiply8(v, a uint8) uint8 {
	switch a {
	case 255:
		return v
	case 0:
		return 0
	}
	return uint8(min((uint32(v)*255+uint32(a)/2)/uint32(a), 255))
}

// unpremultiply16 recovers the straight value of a premultiplied 16-bit channel and
// keeps its high byte.
func unpremultiply16(v, a uint16) uint8 {
	switch a {
	case 0xffff:
		return uint8(v >> 8)
	case 0:
		return 0
	}
	return uint8(min((uint32(v)*0xffff+uint32(a)/2)/uint32(a), 0xffff) >> 8)
}

// cmykToRGB is Pillow's cmyk2rgb (Convert.c): each channel is (255−K) − X·(255−K)/255
// with Pillow's rounded integer division by 255. Go's color.CMYKToRGB rounds
// differently and is off by one on about 2% of values.
func cmykToRGB(c, m, y, k uint8) (uint8, uint8, uint8) {
	nk := 255 - int32(k)
	ch := func(v uint8) uint8 {
		t := int32(v)*nk + 128
		return uint8(nk - ((t>>8)+t)>>8)
	}
	return ch(c), ch(m), ch(y)
}
