package imageproc

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/gif"
	"os"
	"path/filepath"
	"testing"
)

// TestSize reads the size from the header of every format, the size Decode returns
// (a GIF's screen grown to its first frame), and the size of images Decode refuses: Size
// applies no budget, its callers do.
func TestSize(t *testing.T) {
	webpBytes, _ := base64.StdEncoding.DecodeString(tinyWebP)
	lossy, err := os.ReadFile(filepath.Join("testdata", "pil", "photo_lossy_alpha.webp"))
	if err != nil {
		t.Fatal(err)
	}
	// The frame (4×3 at 2, 1) reaches past a 5×3 screen: Pillow and Decode grow it to 6×4.
	grown := encodeGIF(t, &gif.GIF{Image: []*image.Paletted{gifFrame(gifPalette)}, Delay: []int{0},
		Config: image.Config{ColorModel: gifPalette, Width: 8, Height: 6}})
	grown[6], grown[8] = 5, 3
	// An unknown chunk before IHDR is skipped, as Decode skips it.
	sig := []byte("\x89PNG\r\n\x1a\n")
	textFirst := append(append(append([]byte{}, sig...), pngChunk("tEXt", []byte("k\x00v"))...), encodePNG(t, randomImage(7, 2))[8:]...)
	cases := []struct {
		name   string
		data   []byte
		w, h   int
		decode bool // Decode (default budget) accepts it too
	}{
		{"PNG", encodePNG(t, randomImage(40, 30)), 40, 30, true},
		{"PNG after a text chunk", textFirst, 7, 2, true},
		{"JPEG", encodeJPEG(t, randomImage(17, 9)), 17, 9, true},
		{"GIF grown screen", grown, 6, 4, true},
		{"WebP lossless", webpBytes, 2, 2, true},
		{"WebP lossy", lossy, 0, 0, true}, // size from Decode
		{"PNG past the budget", hugePNG(t), 100000, 100000, false},
		{"PNG past MaxSide", rawPNG(t, 70000, 1, 8, 0, nil), 70000, 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, h, err := Size(bytes.NewReader(c.data))
			if err != nil {
				t.Fatal(err)
			}
			m, decodeErr := Decode(bytes.NewReader(c.data), 0)
			if c.decode != (decodeErr == nil) {
				t.Fatalf("Decode: %v", decodeErr)
			}
			if c.w == 0 {
				c.w, c.h = m.W, m.H
			}
			if w != c.w || h != c.h {
				t.Errorf("Size %dx%d, want %dx%d", w, h, c.w, c.h)
			}
			if m != nil && (m.W != w || m.H != h) {
				t.Errorf("Size %dx%d, Decode %dx%d", w, h, m.W, m.H)
			}
		})
	}
}

// TestSizeErrors: a header Size cannot read fails with Decode's message.
func TestSizeErrors(t *testing.T) {
	good := encodePNG(t, randomImage(40, 30))
	corruptCRC := bytes.Clone(good)
	corruptCRC[29] ^= 0xff
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "image: empty input"},
		{"unknown", []byte("hello, world"), "image: unknown format (file starts with 68 65 6c 6c 6f 2c 20 77; want PNG, JPEG, GIF or WebP)"},
		{"BMP", []byte("BM\x36\x00\x00\x00\x00\x00"), "image: unsupported format BMP (want PNG, JPEG, GIF or WebP)"},
		{"PNG signature only", good[:8], "image: reading PNG header: file is truncated"},
		{"PNG bad checksum", corruptCRC, "image: reading PNG header: png: invalid format: invalid checksum"},
		{"PNG zero width", rawPNG(t, 0, 5, 8, 0, nil), "image: reading PNG header: png: invalid format: non-positive dimension"},
		{"JPEG header only", encodeJPEG(t, randomImage(4, 4))[:2], "image: reading JPEG header: file is truncated"},
		{"GIF truncated in the header", []byte("GIF89a\x01\x00"), "image: reading GIF header: file is truncated"},
		{"WebP truncated", []byte("RIFF\x24\x00\x00\x00WEBPVP8X"), "image: reading WebP header: riff: short chunk header"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, h, err := Size(bytes.NewReader(c.data))
			if err == nil {
				t.Fatalf("Size %dx%d, want error %q", w, h, c.want)
			}
			checkMessage(t, err, c.want)
			if _, derr := Decode(bytes.NewReader(c.data), 0); derr == nil || derr.Error() != err.Error() {
				t.Errorf("Decode's error %v, Size's %v", derr, err)
			}
		})
	}
}
