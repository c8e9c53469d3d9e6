package imageproc

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"runtime"
	"testing"
)

// legacyPNG is how Decode read a PNG before decodePNG: image/png, then toRGB (16-bit grey
// clipped as Pillow does). It is the oracle decodePNG must match, pixels and errors.
func legacyPNG(data []byte, limit int) (*RGB, error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("image: reading PNG header: %w", describeEOF(err))
	}
	if err := checkSize(cfg.Width, cfg.Height, pixelLimit(limit)); err != nil {
		return nil, err
	}
	m, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("image: decoding PNG: %w", describeEOF(err))
	}
	if len(data) >= 26 && data[24] == 16 && data[25] == 0 { // 16-bit grey: Gray16, or NRGBA64 with tRNS
		b := m.Bounds()
		out := &RGB{W: b.Dx(), H: b.Dy(), Pix: make([]uint8, b.Dx()*b.Dy()*3)}
		for y := range b.Dy() {
			for x := range b.Dx() {
				var v uint16
				switch m := m.(type) {
				case *image.Gray16:
					v = m.Gray16At(x, y).Y
				case *image.NRGBA64:
					v = m.NRGBA64At(x, y).R
				}
				g := uint8(min(v, 255))
				copy(out.Pix[(y*b.Dx()+x)*3:], []uint8{g, g, g})
			}
		}
		return out, nil
	}
	return toRGB(m), nil
}

// randomPNG writes a PNG of random samples with every scanline's filter chosen at random,
// optionally interlaced, with a random palette, an optional tRNS, and the image data split
// over several IDAT chunks.
func randomPNG(t testing.TB, rng *rand.Rand, w, h, depth, colorType int, interlace, trns bool) []byte {
	t.Helper()
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, byte(depth), byte(colorType), 0, 0, 0)
	passes := []pngPass{{1, 1, 0, 0}}
	if interlace {
		ihdr[12], passes = 1, adam7
	}
	bpp := pngChannels[colorType] * depth
	var raw bytes.Buffer
	for _, p := range passes {
		pw, ph := (w-p.x0+p.xStep-1)/p.xStep, (h-p.y0+p.yStep-1)/p.yStep
		if pw == 0 || ph == 0 {
			continue
		}
		for range ph {
			raw.WriteByte(byte(rng.IntN(5)))
			for range (bpp*pw + 7) / 8 {
				raw.WriteByte(byte(rng.Uint32()))
			}
		}
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw.Bytes())
	zw.Close()
	b := append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr)...)
	if colorType == pngPalette {
		n := 1 + rng.IntN(1<<depth) // fewer entries than indices: the rest read black
		pal := make([]byte, 3*n)
		for i := range pal {
			pal[i] = byte(rng.Uint32())
		}
		b = append(b, pngChunk("PLTE", pal)...)
	}
	if trns {
		switch colorType {
		case pngGrey:
			b = append(b, pngChunk("tRNS", []byte{0, 1})...)
		case pngRGB:
			b = append(b, pngChunk("tRNS", []byte{0, 1, 0, 2, 0, 3})...)
		case pngPalette:
			b = append(b, pngChunk("tRNS", []byte{0, 128, 255})...)
		}
	}
	b = append(b, pngChunk("tEXt", []byte("Comment\x00ignored"))...)
	data := z.Bytes()
	for len(data) > 0 {
		n := min(len(data), 1+rng.IntN(200))
		b = append(b, pngChunk("IDAT", data[:n])...)
		data = data[n:]
	}
	return append(b, pngChunk("IEND", nil)...)
}

// Every colour type, bit depth and interlacing, filters at random, against image/png.
func TestPNGMatchesImagePNG(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	types := []struct{ colorType, depth int }{
		{pngGrey, 1}, {pngGrey, 2}, {pngGrey, 4}, {pngGrey, 8}, {pngGrey, 16},
		{pngRGB, 8}, {pngRGB, 16},
		{pngPalette, 1}, {pngPalette, 2}, {pngPalette, 4}, {pngPalette, 8},
		{pngGreyAlpha, 8}, {pngGreyAlpha, 16},
		{pngRGBA, 8}, {pngRGBA, 16},
	}
	sizes := [][2]int{{1, 1}, {3, 2}, {7, 9}, {17, 5}, {33, 31}}
	for _, ty := range types {
		for _, size := range sizes {
			for _, interlace := range []bool{false, true} {
				for _, trns := range []bool{false, true} {
					if trns && ty.colorType != pngGrey && ty.colorType != pngRGB && ty.colorType != pngPalette {
						continue
					}
					data := randomPNG(t, rng, size[0], size[1], ty.depth, ty.colorType, interlace, trns)
					name := fmt.Sprintf("type %d depth %d %dx%d interlace %v tRNS %v", ty.colorType, ty.depth, size[0], size[1], interlace, trns)
					want, err := legacyPNG(data, 1<<20)
					if err != nil {
						t.Fatalf("%s: image/png: %v", name, err)
					}
					got, err := Decode(bytes.NewReader(data), 1<<20)
					if err != nil {
						t.Errorf("%s: %v", name, err)
						continue
					}
					if got.W != want.W || got.H != want.H || !bytes.Equal(got.Pix, want.Pix) {
						t.Errorf("%s: pixels differ from image/png's", name)
					}
				}
			}
		}
	}
	// The PNGs Go's encoder writes (its filter choice, its palette depths).
	for _, m := range []image.Image{randomImage(31, 7), image.NewGray16(image.Rect(0, 0, 5, 3)),
		image.NewRGBA64(image.Rect(0, 0, 4, 4)), image.NewPaletted(image.Rect(0, 0, 9, 2), color.Palette{color.Black, color.White})} {
		data := encodePNG(t, m)
		want, _ := legacyPNG(data, 0)
		if got, err := Decode(bytes.NewReader(data), 0); err != nil || !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("%T from png.Encode: error %v or pixels differ", m, err)
		}
	}
}

// Broken PNGs fail as image/png fails them, with the same message.
func TestPNGErrorsMatchImagePNG(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	good := randomPNG(t, rng, 9, 7, 8, pngRGB, false, false)
	ihdr := []byte{0, 0, 0, 2, 0, 0, 0, 2, 8, 3, 0, 0, 0} // 2×2 paletted
	pix := func(rows ...[]byte) []byte {
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		for _, r := range rows {
			zw.Write(r)
		}
		zw.Close()
		return z.Bytes()
	}
	sig := []byte("\x89PNG\r\n\x1a\n")
	join := func(parts ...[]byte) []byte { return bytes.Join(append([][]byte{sig}, parts...), nil) }
	cases := map[string][]byte{
		"truncated":             good[:len(good)-30],
		"no IEND":               good[:len(good)-12],
		"bad IDAT CRC":          flip(good, len(good)-20),
		"palette without PLTE":  join(pngChunk("IHDR", ihdr), pngChunk("IDAT", pix([]byte{0, 0, 0}, []byte{0, 0, 0})), pngChunk("IEND", nil)),
		"PLTE too long":         join(pngChunk("IHDR", []byte{0, 0, 0, 2, 0, 0, 0, 2, 1, 3, 0, 0, 0}), pngChunk("PLTE", make([]byte, 9))),
		"PLTE for grey":         join(pngChunk("IHDR", []byte{0, 0, 0, 2, 0, 0, 0, 2, 8, 0, 0, 0, 0}), pngChunk("PLTE", make([]byte, 3))),
		"tRNS wrong length":     join(pngChunk("IHDR", []byte{0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0}), pngChunk("tRNS", make([]byte, 2))),
		"too much pixel data":   join(pngChunk("IHDR", []byte{0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0}), pngChunk("IDAT", pix([]byte{0, 7, 7})), pngChunk("IEND", nil)),
		"not enough pixel data": join(pngChunk("IHDR", []byte{0, 0, 0, 1, 0, 0, 0, 2, 8, 0, 0, 0, 0}), pngChunk("IDAT", pix([]byte{0, 7})), pngChunk("IEND", nil)),
		"bad filter":            join(pngChunk("IHDR", []byte{0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0}), pngChunk("IDAT", pix([]byte{5, 7})), pngChunk("IEND", nil)),
		"bad depth":             join(pngChunk("IHDR", []byte{0, 0, 0, 1, 0, 0, 0, 1, 16, 3, 0, 0, 0})),
		"interlace 2":           join(pngChunk("IHDR", []byte{0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 2})),
		"IHDR twice":            join(pngChunk("IHDR", []byte{0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0}), pngChunk("IHDR", []byte{0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0})),
		"not zlib":              join(pngChunk("IHDR", []byte{0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0}), pngChunk("IDAT", []byte("junk")), pngChunk("IEND", nil)),
		"IEND first":            join(pngChunk("IEND", nil)),
	}
	for name, data := range cases {
		_, want := legacyPNG(data, 0)
		_, got := Decode(bytes.NewReader(data), 0)
		if want == nil || got == nil || got.Error() != want.Error() {
			t.Errorf("%s: error %v, want image/png's %v", name, got, want)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}

// bigPNG16 is a compressible 16-bit RGB PNG of w×h (a gradient), written row by row.
func bigPNG16(t testing.TB, w, h int) []byte {
	t.Helper()
	var raw bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&raw, zlib.BestSpeed)
	row := make([]byte, 1+6*w)
	for y := range h {
		row[0] = 2 // Up: every row after the first is all zeros
		if y == 0 {
			row[0] = 0
			for x := range w {
				binary.BigEndian.PutUint16(row[1+6*x:], uint16(x*7))
				binary.BigEndian.PutUint16(row[3+6*x:], uint16(x*11))
				binary.BigEndian.PutUint16(row[5+6*x:], uint16(x*13))
			}
		} else if y == 1 {
			clear(row[1:])
		}
		zw.Write(row)
	}
	zw.Close()
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 16, pngRGB, 0, 0, 0)
	b := append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr)...)
	b = append(b, pngChunk("IDAT", raw.Bytes())...)
	return append(b, pngChunk("IEND", nil)...)
}

// Decoding a 16-bit PNG allocates the RGB result and little else: image/png's 8 bytes a
// pixel are gone (before: 11 bytes a pixel, 8000×8000 peaked at 730 MB).
func TestPNGDecodesWithoutAFullDepthCopy(t *testing.T) {
	const w, h = 1000, 1000
	data := bigPNG16(t, w, h)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, err := Decode(bytes.NewReader(data), 0)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	perPixel := float64(after.TotalAlloc-before.TotalAlloc) / (w * h)
	t.Logf("16-bit RGB %dx%d: %.2f bytes allocated per pixel", w, h, perPixel)
	if perPixel > 3.5 {
		t.Errorf("decoding allocated %.2f bytes per pixel, want about 3 (the RGB result)", perPixel)
	}
	if m.Pix[3*10] != byte(70>>8) || m.Pix[3*(w*(h-1)+10)+2] != byte(130>>8) {
		t.Error("wrong pixels")
	}
}
