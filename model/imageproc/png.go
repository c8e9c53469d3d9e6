package imageproc

import (
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"image/png"
	"io"
)

// decodePNG decodes a PNG straight into RGB, one scanline at a time. image/png would first
// build the whole image at its own depth, 8 bytes a pixel for 16-bit RGBA, 4 for 8-bit
// RGB, and the RGB copy came on top: an 8000×8000 16-bit PNG peaked at 680 MiB of RSS.
// Here the only image in memory is the RGB result (3 bytes a pixel) and two scanlines:
// 189 MiB (TestPNGPeakRSS).
//
// It accepts and refuses what image/png does, with its messages (png.FormatError,
// png.UnsupportedError): the same chunk order rules, CRC checks, IHDR, PLTE and tRNS
// checks, and "not enough" or "too much pixel data". The conversion is Decode's (Pillow's
// convert('RGB')): alpha and tRNS dropped without compositing, grey replicated, 1/2/4-bit
// grey scaled to 8 bits, palette indices past the palette black, 16-bit samples keep their
// high byte except 16-bit grey, which is clipped to 255. TestPNGMatchesImagePNG checks
// every colour type, depth and interlacing against image/png plus that conversion.
func decodePNG(r io.Reader, limit int) (*RGB, error) {
	d, err := readPNGHeader(r, limit)
	if err != nil {
		return nil, err
	}
	for d.stage != pngSeenIEND {
		header := !d.configRead()
		if err := d.parseChunk(); err != nil {
			if _, ok := err.(sizeError); ok {
				return nil, err
			}
			if header {
				return nil, fmt.Errorf("image: reading PNG header: %w", describeEOF(err))
			}
			return nil, fmt.Errorf("image: decoding PNG: %w", describeEOF(err))
		}
	}
	return d.out, nil
}

// readPNGHeader reads a PNG's signature and IHDR chunk (its size), applying the pixel
// budget unless limit is 0 (Size's header read, which applies none).
func readPNGHeader(r io.Reader, limit int) (*pngDecoder, error) {
	d := &pngDecoder{r: r, crc: crc32.NewIEEE(), limit: limit}
	if _, err := io.ReadFull(r, d.tmp[:8]); err != nil {
		return nil, fmt.Errorf("image: reading PNG header: %w", describeEOF(err))
	}
	if string(d.tmp[:8]) != "\x89PNG\r\n\x1a\n" {
		return nil, fmt.Errorf("image: reading PNG header: %w", png.FormatError("not a PNG file"))
	}
	for d.stage == pngStart { // chunks we do not need may come first; IHDR before any other we use
		if err := d.parseChunk(); err != nil {
			if _, ok := err.(sizeError); ok {
				return nil, err
			}
			return nil, fmt.Errorf("image: reading PNG header: %w", describeEOF(err))
		}
	}
	return d, nil
}

// Stages of a PNG, in the order its chunks must come (image/png's).
const (
	pngStart = iota
	pngSeenIHDR
	pngSeenPLTE
	pngSeenTRNS
	pngSeenIDAT
	pngSeenIEND
)

// PNG colour types.
const (
	pngGrey      = 0
	pngRGB       = 2
	pngPalette   = 3
	pngGreyAlpha = 4
	pngRGBA      = 6
)

// pngChannels is the number of samples per pixel of each colour type.
var pngChannels = map[int]int{pngGrey: 1, pngRGB: 3, pngPalette: 1, pngGreyAlpha: 2, pngRGBA: 4}

// A pngPass is one pass over the image: every xStep-th pixel from x0 of every yStep-th
// row from y0.
type pngPass struct{ xStep, yStep, x0, y0 int }

// adam7 is the Adam7 interlacing; an image without it is the one pass {1, 1, 0, 0}.
var adam7 = []pngPass{
	{8, 8, 0, 0}, {8, 8, 4, 0}, {4, 8, 0, 4}, {4, 4, 2, 0}, {2, 4, 0, 2}, {2, 2, 1, 0}, {1, 2, 0, 1},
}

// sizeError is the pixel budget's refusal, reported as is (checkSize's message).
type sizeError struct{ error }

type pngDecoder struct {
	r     io.Reader
	crc   hash.Hash32
	limit int
	tmp   [3 * 256]byte

	stage                int
	width, height, depth int
	colorType, interlace int
	palette              [256][3]uint8 // entries past the PLTE stay black, as in image/png
	idatLeft             uint32        // bytes left in the current IDAT chunk
	out                  *RGB
}

// configRead reports whether image/png's DecodeConfig would have stopped reading by now:
// errors up to there are reported as header errors, as before.
func (d *pngDecoder) configRead() bool {
	if d.stage >= pngSeenIHDR && d.colorType == pngPalette {
		return d.stage >= pngSeenTRNS
	}
	return d.stage >= pngSeenIHDR
}

func (d *pngDecoder) parseChunk() error {
	if _, err := io.ReadFull(d.r, d.tmp[:8]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	length := binary.BigEndian.Uint32(d.tmp[:4])
	d.crc.Reset()
	d.crc.Write(d.tmp[4:8])
	order := png.FormatError("chunk out of order")
	switch string(d.tmp[4:8]) {
	case "IHDR":
		if d.stage != pngStart {
			return order
		}
		d.stage = pngSeenIHDR
		return d.parseIHDR(length)
	case "PLTE":
		if d.stage != pngSeenIHDR {
			return order
		}
		d.stage = pngSeenPLTE
		return d.parsePLTE(length)
	case "tRNS":
		switch {
		case d.colorType == pngPalette && d.stage != pngSeenPLTE,
			(d.colorType == pngRGB || d.colorType == pngRGBA) && d.stage != pngSeenIHDR && d.stage != pngSeenPLTE,
			(d.colorType == pngGrey || d.colorType == pngGreyAlpha) && d.stage != pngSeenIHDR:
			return order
		}
		d.stage = pngSeenTRNS
		return d.parseTRNS(length)
	case "IDAT":
		if d.stage < pngSeenIHDR || d.stage > pngSeenIDAT || (d.stage == pngSeenIHDR && d.colorType == pngPalette) {
			return order
		}
		if d.stage != pngSeenIDAT { // later IDAT chunks, once the image is read, are skipped
			d.stage = pngSeenIDAT
			d.idatLeft = length
			if err := d.decodePixels(); err != nil {
				return err
			}
			return d.verifyChecksum()
		}
	case "IEND":
		if d.stage != pngSeenIDAT {
			return order
		}
		d.stage = pngSeenIEND
		if length != 0 {
			return png.FormatError("bad IEND length")
		}
		return d.verifyChecksum()
	}
	if length > 0x7fffffff {
		return png.FormatError(fmt.Sprintf("Bad chunk length: %d", length))
	}
	for length > 0 { // a chunk we do not need (text, gamma, ...): checked and skipped
		n, err := io.ReadFull(d.r, d.tmp[:min(len(d.tmp), int(length))])
		if err != nil {
			return err
		}
		d.crc.Write(d.tmp[:n])
		length -= uint32(n)
	}
	return d.verifyChecksum()
}

func (d *pngDecoder) verifyChecksum() error {
	if _, err := io.ReadFull(d.r, d.tmp[:4]); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(d.tmp[:4]) != d.crc.Sum32() {
		return png.FormatError("invalid checksum")
	}
	return nil
}

// readData reads a small chunk's data (at most len(d.tmp) bytes) into the CRC.
func (d *pngDecoder) readData(length uint32) ([]byte, error) {
	b := d.tmp[:length]
	if _, err := io.ReadFull(d.r, b); err != nil {
		return nil, err
	}
	d.crc.Write(b)
	return b, nil
}

func (d *pngDecoder) parseIHDR(length uint32) error {
	if length != 13 {
		return png.FormatError("bad IHDR length")
	}
	b, err := d.readData(13)
	if err != nil {
		return err
	}
	switch {
	case b[10] != 0:
		return png.UnsupportedError("compression method")
	case b[11] != 0:
		return png.UnsupportedError("filter method")
	case b[12] > 1:
		return png.FormatError("invalid interlace method")
	}
	w, h := int32(binary.BigEndian.Uint32(b[0:4])), int32(binary.BigEndian.Uint32(b[4:8]))
	if w <= 0 || h <= 0 {
		return png.FormatError("non-positive dimension")
	}
	d.width, d.height, d.depth, d.colorType, d.interlace = int(w), int(h), int(b[8]), int(b[9]), int(b[12])
	valid := false
	switch d.depth {
	case 1, 2, 4:
		valid = d.colorType == pngGrey || d.colorType == pngPalette
	case 8:
		_, valid = pngChannels[d.colorType]
	case 16:
		_, valid = pngChannels[d.colorType]
		valid = valid && d.colorType != pngPalette
	}
	if !valid {
		return png.UnsupportedError(fmt.Sprintf("bit depth %d, color type %d", b[8], b[9]))
	}
	if err := d.verifyChecksum(); err != nil {
		return err
	}
	// The budget before any pixel is decoded.
	if d.limit == 0 {
		return nil
	}
	if err := checkSize(d.width, d.height, d.limit); err != nil {
		return sizeError{err}
	}
	return nil
}

func (d *pngDecoder) parsePLTE(length uint32) error {
	n := int(length / 3)
	if length%3 != 0 || n <= 0 || n > 256 || n > 1<<uint(d.depth) {
		return png.FormatError("bad PLTE length")
	}
	b, err := d.readData(length)
	if err != nil {
		return err
	}
	switch d.colorType {
	case pngPalette:
		for i := range n {
			d.palette[i] = [3]uint8{b[3*i], b[3*i+1], b[3*i+2]}
		}
	case pngRGB, pngRGBA: // optional there, and unused
	default:
		return png.FormatError("PLTE, color type mismatch")
	}
	return d.verifyChecksum()
}

// parseTRNS checks a tRNS chunk. Its transparency is not needed: alpha is dropped.
func (d *pngDecoder) parseTRNS(length uint32) error {
	switch d.colorType {
	case pngGrey:
		if length != 2 {
			return png.FormatError("bad tRNS length")
		}
	case pngRGB:
		if length != 6 {
			return png.FormatError("bad tRNS length")
		}
	case pngPalette:
		if length > 256 {
			return png.FormatError("bad tRNS length")
		}
	default:
		return png.FormatError("tRNS, color type mismatch")
	}
	if _, err := d.readData(length); err != nil {
		return err
	}
	return d.verifyChecksum()
}

// Read presents the consecutive IDAT chunks as one stream, checking each one's CRC.
func (d *pngDecoder) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for d.idatLeft == 0 {
		if err := d.verifyChecksum(); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(d.r, d.tmp[:8]); err != nil {
			return 0, err
		}
		d.idatLeft = binary.BigEndian.Uint32(d.tmp[:4])
		if string(d.tmp[4:8]) != "IDAT" {
			return 0, png.FormatError("not enough pixel data")
		}
		d.crc.Reset()
		d.crc.Write(d.tmp[4:8])
	}
	n, err := d.r.Read(p[:min(uint32(len(p)), d.idatLeft)])
	d.crc.Write(p[:n])
	d.idatLeft -= uint32(n)
	return n, err
}

// decodePixels inflates the image data and converts it scanline by scanline into d.out.
func (d *pngDecoder) decodePixels() error {
	z, err := zlib.NewReader(d)
	if err != nil {
		return err
	}
	defer z.Close()
	d.out = &RGB{W: d.width, H: d.height, Pix: make([]uint8, d.width*d.height*3)}
	bitsPerPixel := pngChannels[d.colorType] * d.depth
	passes := adam7
	if d.interlace == 0 {
		passes = []pngPass{{1, 1, 0, 0}}
	}
	cr := make([]byte, 1+(bitsPerPixel*d.width+7)/8) // the widest row of any pass
	pr := make([]byte, len(cr))
	for _, p := range passes {
		w := (d.width - p.x0 + p.xStep - 1) / p.xStep
		h := (d.height - p.y0 + p.yStep - 1) / p.yStep
		if w == 0 || h == 0 {
			continue // an empty pass has no scanlines, not even filter bytes
		}
		rowBytes := 1 + (bitsPerPixel*w+7)/8
		cur, prev := cr[:rowBytes], pr[:rowBytes]
		clear(prev)
		for y := range h {
			if _, err := io.ReadFull(z, cur); err != nil {
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					return png.FormatError("not enough pixel data")
				}
				return err
			}
			if err := unfilter(cur[0], cur[1:], prev[1:], max(1, bitsPerPixel/8)); err != nil {
				return err
			}
			d.convertRow(cur[1:], w, p.x0, p.xStep, p.y0+y*p.yStep)
			cur, prev = prev, cur
		}
	}
	// The stream must end here: its checksum is verified at EOF, and more data is an error.
	n := 0
	for i := 0; n == 0 && err == nil; i++ {
		if i == 100 {
			return io.ErrNoProgress
		}
		n, err = z.Read(d.tmp[:1])
	}
	if err != nil && err != io.EOF {
		return png.FormatError(err.Error())
	}
	if n != 0 || d.idatLeft != 0 {
		return png.FormatError("too much pixel data")
	}
	return nil
}

// unfilter undoes a scanline's filter in place; prev is the previous unfiltered scanline
// of the pass (zeros for the first), bpp the filter's bytes per pixel.
func unfilter(filter byte, cur, prev []byte, bpp int) error {
	switch filter {
	case 0: // None
	case 1: // Sub
		for i := bpp; i < len(cur); i++ {
			cur[i] += cur[i-bpp]
		}
	case 2: // Up
		for i, p := range prev {
			cur[i] += p
		}
	case 3: // Average
		for i := range bpp {
			cur[i] += prev[i] / 2
		}
		for i := bpp; i < len(cur); i++ {
			cur[i] += uint8((int(cur[i-bpp]) + int(prev[i])) / 2)
		}
	case 4: // Paeth
		for i := range cur {
			var a, c int
			if i >= bpp {
				a, c = int(cur[i-bpp]), int(prev[i-bpp])
			}
			b := int(prev[i])
			pa, pb, pc := abs(b-c), abs(a-c), abs(a+b-2*c)
			pred := c
			if pa <= pb && pa <= pc {
				pred = a
			} else if pb <= pc {
				pred = b
			}
			cur[i] += uint8(pred)
		}
	default:
		return png.FormatError("bad filter type")
	}
	return nil
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// convertRow writes the w pixels of an unfiltered scanline to row y of d.out, at columns
// x0, x0+step, ... (the pass's columns; 0, 1, ... without interlacing).
func (d *pngDecoder) convertRow(row []byte, w, x0, step, y int) {
	pix := d.out.Pix[y*d.width*3:]
	set := func(j int, r, g, b uint8) {
		i := (x0 + j*step) * 3
		pix[i], pix[i+1], pix[i+2] = r, g, b
	}
	switch d.colorType*32 + d.depth {
	case pngGrey*32 + 1, pngGrey*32 + 2, pngGrey*32 + 4:
		scale := uint8(255 / (1<<d.depth - 1)) // 0xff, 0x55, 0x11: image/png's and Pillow's
		for j := range w {
			v := subByteSample(row, j, d.depth) * scale
			set(j, v, v, v)
		}
	case pngGrey*32 + 8:
		for j := range w {
			set(j, row[j], row[j], row[j])
		}
	case pngGrey*32 + 16:
		for j := range w {
			v := uint8(min(binary.BigEndian.Uint16(row[2*j:]), 255)) // Pillow clips, see Decode
			set(j, v, v, v)
		}
	case pngPalette*32 + 1, pngPalette*32 + 2, pngPalette*32 + 4, pngPalette*32 + 8:
		for j := range w {
			c := d.palette[subByteSample(row, j, d.depth)]
			set(j, c[0], c[1], c[2])
		}
	default: // 8 or 16 bits per sample: grey+alpha, RGB, RGBA; the high byte of 16
		channels, bytes := pngChannels[d.colorType], d.depth/8
		stride := channels * bytes
		for j := range w {
			p := row[j*stride:]
			if channels < 3 {
				set(j, p[0], p[0], p[0])
			} else {
				set(j, p[0], p[bytes], p[2*bytes])
			}
		}
	}
}

// subByteSample is sample j of a scanline of depth-bit samples (1, 2, 4 or 8), packed
// from the high bit down.
func subByteSample(row []byte, j, depth int) uint8 {
	if depth == 8 {
		return row[j]
	}
	bit := j * depth
	return row[bit/8] >> (8 - depth - bit%8) & (1<<depth - 1)
}
