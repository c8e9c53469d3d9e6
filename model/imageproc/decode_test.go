package imageproc

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// tinyWebP is a 2×2 lossless WebP written by Pillow 9.4 (libwebp 1.2.4, exact=True)
// from RGBA pixels (255,0,0,255) (0,255,0,128) / (0,0,255,0) (10,20,30,255).
const tinyWebP = "UklGRjoAAABXRUJQVlA4TC4AAAAvAUAAEB8gEEiS2B91DSEBQfX/L4EAwYj/SwISwnNZLjD2pUooCRAARRmJ6H8w"

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeGIF(t testing.TB, g *gif.GIF) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngChunk frames one PNG chunk: length, type, data, CRC of type and data.
func pngChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// rawPNG builds a PNG by hand, for what image/png cannot write (16-bit grey with
// tRNS) or must never be asked to allocate (a huge IHDR). scanlines excludes the
// filter bytes; extra chunks go between IHDR and IDAT.
func rawPNG(t testing.TB, w, h uint32, depth, colorType byte, scanlines [][]byte, extra ...[]byte) []byte {
	t.Helper()
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, depth, colorType, 0, 0, 0)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	for _, line := range scanlines {
		zw.Write(append([]byte{0}, line...))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	b := []byte("\x89PNG\r\n\x1a\n")
	b = append(b, pngChunk("IHDR", ihdr)...)
	for _, c := range extra {
		b = append(b, c...)
	}
	b = append(b, pngChunk("IDAT", z.Bytes())...)
	return append(b, pngChunk("IEND", nil)...)
}

// be16 writes 16-bit big-endian samples.
func be16(v ...uint16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint16(b, x)
	}
	return b
}

// gifFrame is a 4×3 frame at (2, 1), each row indices 0 1 2 3, in an 8×6 screen.
func gifFrame(p color.Palette) *image.Paletted {
	m := image.NewPaletted(image.Rect(2, 1, 6, 4), p)
	for i := range m.Pix {
		m.Pix[i] = uint8(i % 4)
	}
	return m
}

var (
	red   = [3]uint8{200, 0, 0}
	under = [3]uint8{10, 20, 30} // the colour under GIF's transparent index
	blue  = [3]uint8{0, 0, 250}
	green = [3]uint8{5, 250, 5}
)

// gifPalette has index 1 transparent (image/gif writes a transparency flag for the
// first entry with alpha 0) but still stores the colour 10, 20, 30 for it.
var gifPalette = color.Palette{
	color.RGBA{200, 0, 0, 255}, color.RGBA{10, 20, 30, 0}, color.RGBA{0, 0, 250, 255}, color.RGBA{5, 250, 5, 255},
}

// screen draws the expected 8×6 GIF: background everywhere, the frame's rows at (2, 1).
func screen(w, h int, background [3]uint8, frameAt image.Point) []uint8 {
	var pix []uint8
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := background
			if p := image.Pt(x, y).Sub(frameAt); p.In(image.Rect(0, 0, 4, 3)) {
				c = [4][3]uint8{red, under, blue, green}[p.X]
			}
			pix = append(pix, c[:]...)
		}
	}
	return pix
}

func rgbRows(rows ...[][3]uint8) []uint8 {
	var pix []uint8
	for _, r := range rows {
		for _, c := range r {
			pix = append(pix, c[:]...)
		}
	}
	return pix
}

// TestDecodeFormats decodes images written at test time and checks every pixel. The
// expectations are Pillow's convert('RGB') results, checked against Pillow 9.4 when
// this test was written.
func TestDecodeFormats(t *testing.T) {
	opaque := image.NewRGBA(image.Rect(0, 0, 2, 1))
	copy(opaque.Pix, []uint8{1, 2, 3, 255, 250, 251, 252, 255})

	straight := image.NewNRGBA(image.Rect(0, 0, 3, 1))
	copy(straight.Pix, []uint8{10, 20, 30, 0, 200, 100, 0, 77, 50, 60, 70, 255})

	gray := image.NewGray(image.Rect(0, 0, 3, 1))
	copy(gray.Pix, []uint8{0, 77, 255})

	gray16 := image.NewGray16(image.Rect(0, 0, 5, 1))
	for x, v := range []uint16{0, 0x80, 0xff, 0x100, 0xabcd} {
		gray16.SetGray16(x, 0, color.Gray16{Y: v})
	}

	rgb16 := image.NewRGBA64(image.Rect(0, 0, 2, 1))
	rgb16.SetRGBA64(0, 0, color.RGBA64{0x00ff, 0x1234, 0xabcd, 0xffff})
	rgb16.SetRGBA64(1, 0, color.RGBA64{0xff00, 0x0100, 0x8081, 0xffff})

	rgba16 := image.NewNRGBA64(image.Rect(0, 0, 2, 1))
	rgba16.SetNRGBA64(0, 0, color.NRGBA64{0x00ff, 0x1234, 0xabcd, 0})
	rgba16.SetNRGBA64(1, 0, color.NRGBA64{0xff00, 0x0100, 0x8081, 0x4000})

	paletted := image.NewPaletted(image.Rect(0, 0, 4, 1), color.Palette{
		color.NRGBA{1, 2, 3, 0}, color.NRGBA{100, 150, 200, 128}, color.NRGBA{9, 8, 7, 255},
	})
	copy(paletted.Pix, []uint8{0, 1, 2, 1})

	flat := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := 0; i < len(flat.Pix); i += 4 {
		copy(flat.Pix[i:], []uint8{200, 80, 40, 255})
	}

	webpBytes, err := base64.StdEncoding.DecodeString(tinyWebP)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		data []byte
		w, h int
		want []uint8
		tol  uint8 // JPEG is lossy; everything else is exact
	}{
		{"PNG RGB", encodePNG(t, opaque), 2, 1, []uint8{1, 2, 3, 250, 251, 252}, 0},
		{"PNG RGBA drops alpha without compositing", encodePNG(t, straight), 3, 1,
			[]uint8{10, 20, 30, 200, 100, 0, 50, 60, 70}, 0},
		{"PNG grey is replicated", encodePNG(t, gray), 3, 1, []uint8{0, 0, 0, 77, 77, 77, 255, 255, 255}, 0},
		{"PNG 16-bit grey clips like Pillow", encodePNG(t, gray16), 5, 1,
			rgbRows([][3]uint8{{0, 0, 0}, {128, 128, 128}, {255, 255, 255}, {255, 255, 255}, {255, 255, 255}}), 0},
		{"PNG 16-bit grey with tRNS clips too",
			rawPNG(t, 3, 1, 16, 0, [][]byte{be16(0x80, 0x100, 0x7f)}, pngChunk("tRNS", be16(0x80))), 3, 1,
			[]uint8{128, 128, 128, 255, 255, 255, 127, 127, 127}, 0},
		{"PNG 16-bit RGB keeps the high byte", encodePNG(t, rgb16), 2, 1, []uint8{0, 0x12, 0xab, 0xff, 1, 0x80}, 0},
		{"PNG 16-bit RGBA keeps the high byte of the straight colour", encodePNG(t, rgba16), 2, 1,
			[]uint8{0, 0x12, 0xab, 0xff, 1, 0x80}, 0},
		{"PNG palette with tRNS gives palette colours", encodePNG(t, paletted), 4, 1,
			[]uint8{1, 2, 3, 100, 150, 200, 9, 8, 7, 100, 150, 200}, 0},
		{"JPEG colour", encodeJPEG(t, flat), 16, 16, bytes.Repeat([]uint8{200, 80, 40}, 256), 2},
		{"JPEG grey", encodeJPEG(t, gray), 3, 1, []uint8{0, 0, 0, 77, 77, 77, 255, 255, 255}, 2},
		{"GIF frame on its screen, transparent index shows its colour",
			encodeGIF(t, &gif.GIF{Image: []*image.Paletted{gifFrame(gifPalette)}, Delay: []int{0},
				Config: image.Config{ColorModel: gifPalette, Width: 8, Height: 6}}),
			8, 6, screen(8, 6, under, image.Pt(2, 1)), 0},
		{"GIF without transparency fills with palette entry 0",
			encodeGIF(t, &gif.GIF{Image: []*image.Paletted{gifFrame(opaquePalette())}, Delay: []int{0},
				Config: image.Config{ColorModel: opaquePalette(), Width: 8, Height: 6}}),
			8, 6, screen(8, 6, red, image.Pt(2, 1)), 0},
		{"GIF screen grows to hold the first frame", shrinkGIFScreen(t, 4, 3), 6, 4,
			screen(6, 4, under, image.Pt(2, 1)), 0},
		{"GIF first frame only",
			encodeGIF(t, &gif.GIF{Image: []*image.Paletted{gifFrame(gifPalette), solidFrame(3)}, Delay: []int{0, 0},
				Config: image.Config{ColorModel: gifPalette, Width: 8, Height: 6}}),
			8, 6, screen(8, 6, under, image.Pt(2, 1)), 0},
		{"WebP lossless drops alpha", webpBytes, 2, 2,
			[]uint8{255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Decode(bytes.NewReader(c.data), 0)
			if err != nil {
				t.Fatal(err)
			}
			if got.W != c.w || got.H != c.h || len(got.Pix) != c.w*c.h*3 {
				t.Fatalf("got %dx%d with %d bytes, want %dx%d", got.W, got.H, len(got.Pix), c.w, c.h)
			}
			for i, v := range c.want {
				if d := max(got.Pix[i], v) - min(got.Pix[i], v); d > c.tol {
					t.Fatalf("pixel %d channel %d = %d, want %d (±%d)\ngot  %v\nwant %v", i/3, i%3, got.Pix[i], v, c.tol, got.Pix, c.want)
				}
			}
		})
	}
}

func opaquePalette() color.Palette {
	p := append(color.Palette(nil), gifPalette...)
	p[1] = color.RGBA{10, 20, 30, 255}
	return p
}

func solidFrame(index uint8) *image.Paletted {
	m := image.NewPaletted(image.Rect(0, 0, 8, 6), gifPalette)
	for i := range m.Pix {
		m.Pix[i] = index
	}
	return m
}

// shrinkGIFScreen writes the usual GIF and then shrinks its logical screen to w×h,
// smaller than the frame at (2, 1)–(6, 4), as some encoders do.
func shrinkGIFScreen(t *testing.T, w, h uint16) []byte {
	b := encodeGIF(t, &gif.GIF{Image: []*image.Paletted{gifFrame(gifPalette)}, Delay: []int{0},
		Config: image.Config{ColorModel: gifPalette, Width: 8, Height: 6}})
	binary.LittleEndian.PutUint16(b[6:], w)
	binary.LittleEndian.PutUint16(b[8:], h)
	return b
}

// TestDecodeMatchesPillow compares with Pillow's Image.open(f).convert('RGB') on files
// it wrote (testdata/make_pil_cases.py). PNG and WebP are exact. For JPEG only the
// inverse DCT differs (Go's versus libjpeg-turbo's islow); the tolerance is what that
// leaves, measured. For scale: image/jpeg's own YCbCr.At conversion is off by up to
// 104 levels on 93% of the values of the 4:2:0 file.
func TestDecodeMatchesPillow(t *testing.T) {
	cases := []struct {
		file    string
		maxDiff int
		maxFrac float64 // fraction of values allowed to differ at all
	}{
		{"photo_lossless.webp", 0, 0},
		{"photo_lossy.webp", 0, 0},
		{"photo_lossy_alpha.webp", 0, 0},
		{"photo_444.jpg", 3, 0.05},
		{"photo_422.jpg", 3, 0.05},
		{"photo_420.jpg", 3, 0.05},
		{"photo_440.jpg", 3, 0.05},
		{"photo_411.jpg", 3, 0.05},
		{"photo_progressive.jpg", 3, 0.05},
		{"photo_gray.jpg", 1, 0.05},
		{"photo_cmyk.jpg", 1, 0.05},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got := mustDecodeFile(t, filepath.Join("testdata", "pil", c.file))
			want := mustDecodeFile(t, filepath.Join("testdata", "pil", c.file+".pil.png"))
			if got.W != want.W || got.H != want.H {
				t.Fatalf("size %dx%d, Pillow %dx%d", got.W, got.H, want.W, want.H)
			}
			n, worst := 0, 0
			for i := range want.Pix {
				if d := int(got.Pix[i]) - int(want.Pix[i]); d != 0 {
					n++
					worst = max(worst, d, -d)
				}
			}
			frac := float64(n) / float64(len(want.Pix))
			t.Logf("%d of %d values differ (%.2f%%), by at most %d", n, len(want.Pix), 100*frac, worst)
			if worst > c.maxDiff || frac > c.maxFrac {
				t.Errorf("differs from Pillow by up to %d on %.2f%% of values; allowed %d on %.2f%%", worst, 100*frac, c.maxDiff, 100*c.maxFrac)
			}
		})
	}
}

// hugePNG is a valid PNG signature and IHDR claiming 100000×100000 RGBA pixels
// (40 GB decoded), followed by a tiny IDAT.
func hugePNG(t testing.TB) []byte {
	return rawPNG(t, 100000, 100000, 8, 6, [][]byte{{0, 0, 0, 0}})
}

func TestDecodeRefusesDecompressionBombs(t *testing.T) {
	// A JPEG SOF0 claiming 60000×60000 grey pixels and the start of a scan.
	hugeJPEG := []byte{0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0xea, 0x60, 0xea, 0x60, 1, 1, 0x11, 0,
		0xff, 0xda, 0, 8, 1, 1, 0, 0, 0x3f, 0}
	// A GIF screen of 65535×65535 with a 2-colour table and a frame covering it.
	hugeGIF := append([]byte("GIF89a\xff\xff\xff\xff\x80\x00\x00\x00\x00\x00\xff\xff\xff"),
		0x2c, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 2, 2, 0x4c, 0x01, 0, 0x3b)
	// A WebP VP8X header with a 16384×16384 canvas.
	hugeWebP := []byte("RIFF\x24\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00\xff\x3f\x00\xff\x3f\x00")

	cases := []struct {
		name  string
		data  []byte
		limit int
		want  string
	}{
		{"PNG", hugePNG(t), 0, "image: 100000x100000 pixels exceeds the limit of 64000000"},
		{"JPEG", hugeJPEG, 0, "image: 60000x60000 pixels exceeds the limit of 64000000"},
		{"GIF", hugeGIF, 0, "image: 65535x65535 pixels exceeds the limit of 64000000"},
		{"WebP", hugeWebP, 0, "image: 16384x16384 pixels exceeds the limit of 64000000"},
		{"PNG with a side too long", rawPNG(t, 100000, 1, 8, 0, [][]byte{{0}}), 0,
			"image: 100000x1 pixels exceeds the limit of 65535 per side"},
		{"custom limit", encodePNG(t, image.NewGray(image.Rect(0, 0, 10, 10))), 99,
			"image: 10x10 pixels exceeds the limit of 99"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Decode(bytes.NewReader(c.data), c.limit)
			runtime.ReadMemStats(&after)
			if err == nil || err.Error() != c.want {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			// Headers and buffers only: nowhere near a decoded image.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Errorf("allocated %d bytes before refusing", alloc)
			}
		})
	}

	if _, err := Decode(bytes.NewReader(encodePNG(t, image.NewGray(image.Rect(0, 0, 10, 10)))), 100); err != nil {
		t.Errorf("an image of exactly the limit is refused: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := encodePNG(t, randomImage(40, 30))
	corruptCRC := bytes.Clone(good)
	corruptCRC[29] ^= 0xff // inside IHDR's CRC
	goodJPEG := encodeJPEG(t, randomImage(40, 30))
	goodGIF := encodeGIF(t, &gif.GIF{Image: []*image.Paletted{gifFrame(gifPalette)}, Delay: []int{0},
		Config: image.Config{ColorModel: gifPalette, Width: 8, Height: 6}})
	webpBytes, _ := base64.StdEncoding.DecodeString(tinyWebP)

	cases := []struct {
		name string
		data []byte
		want string // the whole message, or a prefix ending in "…"
	}{
		{"empty", nil, "image: empty input"},
		{"unknown", []byte("hello, world"), "image: unknown format (file starts with 68 65 6c 6c 6f 2c 20 77; want PNG, JPEG, GIF or WebP)"},
		{"BMP", []byte("BM\x36\x00\x00\x00\x00\x00"), "image: unsupported format BMP (want PNG, JPEG, GIF or WebP)"},
		{"HEIC", []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00"), "image: unsupported format HEIC (want PNG, JPEG, GIF or WebP)"},
		{"PNG signature only", good[:8], "image: reading PNG header: file is truncated"},
		{"PNG truncated in the pixels", good[:len(good)/2], "image: decoding PNG: png: invalid format: not enough pixel data"},
		{"PNG bad checksum", corruptCRC, "image: reading PNG header: png: invalid format: invalid checksum"},
		{"PNG zero width", rawPNG(t, 0, 5, 8, 0, nil), "image: reading PNG header: png: invalid format: non-positive dimension"},
		{"JPEG truncated", goodJPEG[:len(goodJPEG)/2], "image: decoding JPEG: invalid JPEG format: short Huffman data"},
		{"JPEG header only", goodJPEG[:2], "image: reading JPEG header: file is truncated"},
		{"GIF truncated in the header", goodGIF[:12], "image: reading GIF header: file is truncated"},
		{"GIF truncated in the pixels", goodGIF[:len(goodGIF)-6], "image: decoding GIF: …"},
		{"GIF without frames", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00\x3b"), "image: reading GIF header: no image before the trailer"},
		{"GIF unknown block", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00\x99"), "image: reading GIF header: unknown block type 0x99"},
		{"GIF empty screen", []byte("GIF89a\x00\x00\x00\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff\x2c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3b"),
			"image: size 0x0 has no pixels"},
		{"WebP truncated", webpBytes[:40], "image: decoding WebP: …"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Decode(bytes.NewReader(c.data), 0)
			if err == nil {
				t.Fatalf("decoded %dx%d, want error %q", m.W, m.H, c.want)
			}
			checkMessage(t, err, c.want)
		})
	}
}

func checkMessage(t *testing.T, err error, want string) {
	t.Helper()
	if prefix, ok := strings.CutSuffix(want, "…"); ok {
		if !strings.HasPrefix(err.Error(), prefix) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %q, want one line starting %q", err, prefix)
		}
		return
	}
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestDecodeFileNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "cat.png")
	if err := os.WriteFile(bad, []byte("not a picture"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := DecodeFile(bad, 0)
	checkMessage(t, err, bad+": image: unknown format (file starts with 6e 6f 74 20 61 20 70 69; want PNG, JPEG, GIF or WebP)")

	missing := filepath.Join(dir, "missing.jpg")
	_, err = DecodeFile(missing, 0)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("error %v, want a not-exist error naming %s", err, missing)
	}
}

func TestPreprocessErrors(t *testing.T) {
	good := encodePNG(t, randomImage(4, 4))
	for _, c := range []struct {
		name      string
		data      []byte
		size, max int
		want      string
	}{
		{"zero size", good, 0, 0, "vision_config.image_size 0 is not positive"},
		{"size over the budget", good, 100, 9999, "vision_config.image_size 100: the 100x100 resized image exceeds the limit of 9999 pixels"},
		{"bad image", []byte("GIF89a"), 28, 0, "image: reading GIF header: file is truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Preprocess(bytes.NewReader(c.data), c.size, c.max)
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			checkMessage(t, err, c.want)
		})
	}
	v, err := Preprocess(bytes.NewReader(good), 3, 0)
	if err != nil || len(v) != 3*3*3 {
		t.Fatalf("Preprocess to 3×3: %d values, error %v", len(v), err)
	}
}

func randomImage(w, h int) *image.NRGBA {
	src := randomRGB(w, h, uint64(w*h))
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		copy(m.Pix[i*4:], src.Pix[i*3:i*3+3])
		m.Pix[i*4+3] = 255
	}
	return m
}

// FuzzDecode feeds arbitrary bytes to Decode: it must return an error or a consistent
// image within the pixel budget, of the size Size reads, and never panic; a PNG must
// decode as image/png decodes it. The seeds are one file of every
// kind the other tests use.
func FuzzDecode(f *testing.F) {
	f.Add(encodePNG(f, randomImage(5, 4)))
	f.Add(encodePNG(f, image.NewGray16(image.Rect(0, 0, 3, 2))))
	f.Add(rawPNG(f, 3, 1, 16, 0, [][]byte{be16(1, 2, 3)}, pngChunk("tRNS", be16(2))))
	f.Add(randomPNG(f, rand.New(rand.NewPCG(5, 6)), 5, 3, 2, pngPalette, true, true))
	f.Add(randomPNG(f, rand.New(rand.NewPCG(7, 8)), 3, 5, 16, pngRGBA, true, false))
	f.Add(encodeJPEG(f, randomImage(17, 9)))
	f.Add(encodeGIF(f, &gif.GIF{Image: []*image.Paletted{gifFrame(gifPalette)}, Delay: []int{0},
		Config: image.Config{ColorModel: gifPalette, Width: 8, Height: 6}}))
	webpBytes, _ := base64.StdEncoding.DecodeString(tinyWebP)
	f.Add(webpBytes)
	f.Add(hugePNG(f))
	for _, name := range []string{"photo_420.jpg", "photo_cmyk.jpg", "photo_lossy_alpha.webp"} {
		b, err := os.ReadFile(filepath.Join("testdata", "pil", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	const limit = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(bytes.NewReader(data), limit)
		if sniff(data) == "PNG" { // decodePNG accepts what image/png accepts, to the same pixels
			want, wantErr := legacyPNG(data, limit)
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("PNG: error %v, image/png's %v", err, wantErr)
			}
			if err == nil && !bytes.Equal(m.Pix, want.Pix) {
				t.Fatal("PNG: pixels differ from image/png's")
			}
		}
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if err := m.check(); err != nil {
			t.Fatal(err)
		}
		if m.W*m.H > limit {
			t.Fatalf("decoded %dx%d past the limit of %d", m.W, m.H, limit)
		}
		if w, h, err := Size(bytes.NewReader(data)); err != nil || w != m.W || h != m.H {
			t.Fatalf("decoded %dx%d, Size says %dx%d (%v)", m.W, m.H, w, h, err)
		}
	})
}

// BenchmarkDecodeJPEG1920x1080 decodes a 4:2:0 Full HD JPEG (image/jpeg's default
// subsampling) including the libjpeg-style chroma upsampling and colour conversion.
func BenchmarkDecodeJPEG1920x1080(b *testing.B) {
	data := encodeJPEG(b, randomImage(1920, 1080))
	b.SetBytes(1920 * 1080 * 3)
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(data), 0); err != nil {
			b.Fatal(err)
		}
	}
}
