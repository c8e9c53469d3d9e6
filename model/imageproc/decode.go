package imageproc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"

	"golang.org/x/image/webp"
)

// DefaultMaxPixels is the pixel budget Decode applies when given 0: a 64-megapixel
// image already needs about 200 MB as RGB, more than a browser tab should spend on the
// input of a 490×490 model. Pillow warns at 89 megapixels for the same reason.
const DefaultMaxPixels = 64_000_000

// MaxSide bounds the width and the height, whatever the pixel budget: the largest side
// JPEG and GIF can express. Only PNG goes past it, and a 64000000×1 PNG, tiny on disk
// and within the default budget, would make the resize tables of Pillow's algorithm
// (about 16 bytes per source column) take a gigabyte.
const MaxSide = 65535

// pixelLimit resolves Decode's maxPixels argument.
func pixelLimit(maxPixels int) int {
	if maxPixels <= 0 {
		return DefaultMaxPixels
	}
	return maxPixels
}

// DecodeFile decodes the image file at path like Decode; errors name the file.
func DecodeFile(path string, maxPixels int) (*RGB, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError names the file
	}
	defer f.Close()
	img, err := Decode(f, maxPixels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// Decode reads a PNG, JPEG, GIF (first frame) or WebP image and converts it to RGB the
// way Pillow's Image.open(r).convert('RGB') does:
//
//   - alpha is dropped, not composited: a transparent pixel keeps its stored colour;
//   - grey is replicated to three channels, palette images take the palette colour;
//   - 16-bit PNG channels keep their most significant byte, except 16-bit greyscale,
//     which Pillow opens as a 32-bit integer image and clips to 0…255 on conversion
//     (so 256 and above become white): reproduced on purpose, as it is what the
//     reference pipeline feeds the model;
//   - JPEG chroma is upsampled and converted to RGB with libjpeg's integer arithmetic
//     ("fancy" triangle upsampling, 16-bit fixed-point YCbCr); only the inverse DCT
//     is Go's, which leaves at most a few levels of difference on some pixels;
//     Adobe CMYK JPEGs convert with Pillow's formula R = (255−K) − C·(255−K)/255
//     (YCCK-coded ones first go through image/jpeg's own YCbCr conversion, a level or
//     two away from libjpeg's). EXIF orientation is ignored, as Image.open ignores it;
//   - a GIF is the first frame on its logical screen, transparent pixels showing
//     their palette colour, as Pillow loads it;
//   - lossless WebP is exact; lossy WebP is upsampled and converted with libwebp's
//     arithmetic.
//
// The image size is read first and an image of more than maxPixels pixels (0 or less
// means DefaultMaxPixels) or more than MaxSide pixels wide or high is refused before
// any pixel data is decoded. Errors are one line, start with "image: " and say which
// format and step failed.
func Decode(r io.Reader, maxPixels int) (*RGB, error) {
	limit := pixelLimit(maxPixels)
	br := bufio.NewReader(r)
	switch format, err := formatOf(br); format {
	case "PNG":
		return decodePNG(br, limit)
	case "JPEG":
		m, err := configThenDecode(br, format, jpeg.DecodeConfig, jpeg.Decode, limit)
		if err != nil {
			return nil, err
		}
		return jpegToRGB(m)
	case "GIF":
		return decodeGIF(br, limit)
	case "WebP":
		m, err := configThenDecode(br, format, webp.DecodeConfig, webp.Decode, limit)
		if err != nil {
			return nil, err
		}
		return webpToRGB(m)
	default:
		return nil, err
	}
}

// Size reads the width and height that Decode would return from the header of a PNG,
// JPEG, GIF or WebP image (a GIF's logical screen grown to hold its first frame) without
// decoding a pixel: a caller with a tighter limit than Decode's (the browser engine's
// side limit) refuses a large image before any pixel is decoded, and one that needs the
// size only (to map grounding boxes) needs no decode. No pixel budget applies here;
// Decode applies its own. Errors are Decode's for the same header.
func Size(r io.Reader) (w, h int, err error) {
	br := bufio.NewReader(r)
	switch format, err := formatOf(br); format {
	case "PNG":
		d, err := readPNGHeader(br, 0)
		if err != nil {
			return 0, 0, err
		}
		return d.width, d.height, nil
	case "JPEG":
		cfg, err := readConfig(br, format, jpeg.DecodeConfig)
		return cfg.Width, cfg.Height, err
	case "GIF":
		_, s, err := readGIFScreen(br)
		if err != nil {
			return 0, 0, fmt.Errorf("image: reading GIF header: %w", describeEOF(err))
		}
		return s.width, s.height, nil
	case "WebP":
		cfg, err := readConfig(br, format, webp.DecodeConfig)
		return cfg.Width, cfg.Height, err
	default:
		return 0, 0, err
	}
}

// formatOf sniffs the format at the start of br: "PNG", "JPEG", "GIF" or "WebP", or
// "" and an error naming what the file is instead.
func formatOf(br *bufio.Reader) (string, error) {
	head, err := br.Peek(32)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("image: %w", err)
	}
	switch format := sniff(head); format {
	case "PNG", "JPEG", "GIF", "WebP":
		return format, nil
	case "":
		if len(head) == 0 {
			return "", errors.New("image: empty input")
		}
		return "", fmt.Errorf("image: unknown format (file starts with % x; want PNG, JPEG, GIF or WebP)", head[:min(len(head), 8)])
	default:
		return "", fmt.Errorf("image: unsupported format %s (want PNG, JPEG, GIF or WebP)", format)
	}
}

// signatures maps leading bytes to format names: the four decoded formats, and others
// only so that the error can name what was given. "?" matches any byte.
var signatures = []struct{ prefix, format string }{
	{"\x89PNG\r\n\x1a\n", "PNG"},
	{"\xff\xd8", "JPEG"},
	{"GIF87a", "GIF"},
	{"GIF89a", "GIF"},
	{"RIFF????WEBP", "WebP"},
	{"BM", "BMP"},
	{"II*\x00", "TIFF"},
	{"MM\x00*", "TIFF"},
	{"\x00\x00\x01\x00", "ICO"},
	{"????ftypavif", "AVIF"},
	{"????ftypheic", "HEIC"},
	{"????ftypheix", "HEIC"},
	{"????ftypmif1", "HEIF"},
	{"\xff\x0a", "JPEG XL"},
	{"\x00\x00\x00\x0cJXL ", "JPEG XL"},
	{"qoif", "QOI"},
	{"8BPS", "PSD"},
	{"%PDF", "PDF"},
	{"<svg", "SVG"},
	{"<?xml", "XML (SVG?)"},
}

// sniff names the format whose signature head starts with, or returns "".
func sniff(head []byte) string {
	for _, s := range signatures {
		if matchSignature(head, s.prefix) {
			return s.format
		}
	}
	return ""
}

func matchSignature(head []byte, prefix string) bool {
	if len(head) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if prefix[i] != '?' && head[i] != prefix[i] {
			return false
		}
	}
	return true
}

// checkSize applies the pixel budget and MaxSide to a size read from a header.
func checkSize(w, h, limit int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("image: size %dx%d has no pixels", w, h)
	}
	if int64(w)*int64(h) > int64(limit) {
		return fmt.Errorf("image: %dx%d pixels exceeds the limit of %d", w, h, limit)
	}
	if w > MaxSide || h > MaxSide {
		return fmt.Errorf("image: %dx%d pixels exceeds the limit of %d per side", w, h, MaxSide)
	}
	return nil
}

// readConfig reads a header with config, with Decode's error messages.
func readConfig(r io.Reader, format string, config func(io.Reader) (image.Config, error)) (image.Config, error) {
	cfg, err := config(r)
	if err != nil {
		return cfg, fmt.Errorf("image: reading %s header: %w", format, describeEOF(err))
	}
	return cfg, nil
}

// configThenDecode reads the header with config, applies the pixel budget, then
// decodes: the header bytes config consumed are replayed in front of the rest of the
// stream, so nothing is read twice and nothing needs to be seekable.
func configThenDecode(br *bufio.Reader, format string,
	config func(io.Reader) (image.Config, error),
	decode func(io.Reader) (image.Image, error), limit int) (image.Image, error) {
	var seen bytes.Buffer
	cfg, err := readConfig(io.TeeReader(br, &seen), format, config)
	if err != nil {
		return nil, err
	}
	if err := checkSize(cfg.Width, cfg.Height, limit); err != nil {
		return nil, err
	}
	m, err := decode(io.MultiReader(&seen, br))
	if err != nil {
		return nil, fmt.Errorf("image: decoding %s: %w", format, describeEOF(err))
	}
	if b := m.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		// The decoders guarantee this; a mismatch would bypass the budget.
		return nil, fmt.Errorf("image: decoding %s: header says %dx%d but image is %dx%d", format, cfg.Width, cfg.Height, b.Dx(), b.Dy())
	}
	return m, nil
}

// describeEOF makes the decoders' bare "EOF" / "unexpected EOF" say what happened.
func describeEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return truncatedError{err}
	}
	return err
}

// truncatedError reports input that ended early; errors.Is still sees the EOF.
type truncatedError struct{ err error }

func (e truncatedError) Error() string { return "file is truncated" }
func (e truncatedError) Unwrap() error { return e.err }
