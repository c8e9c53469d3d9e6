package imageproc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"io"
)

// gifScreen is what Pillow takes from a GIF before the first frame's pixels.
type gifScreen struct {
	width, height int             // logical screen, grown to hold the first frame
	frame         image.Rectangle // the first frame's place on the screen
	transparent   int             // transparent palette index, or -1
}

// decodeGIF returns the first frame of a GIF as Pillow's Image.open(...).convert('RGB')
// sees it: the full logical screen, filled with the transparent index's colour (or
// palette entry 0 when there is none) around the frame, and transparent pixels showing
// their palette colour. Go's image/gif would instead give the frame alone with the
// transparent entry turned into black, so the transparency flags are cleared in the
// header bytes before Go decodes them.
func decodeGIF(br *bufio.Reader, limit int) (*RGB, error) {
	prefix, s, err := readGIFScreen(br)
	if err != nil {
		return nil, fmt.Errorf("image: reading GIF header: %w", describeEOF(err))
	}
	if err := checkSize(s.width, s.height, limit); err != nil {
		return nil, err
	}
	m, err := gif.Decode(io.MultiReader(bytes.NewReader(prefix), br))
	if err != nil {
		return nil, fmt.Errorf("image: decoding GIF: %w", describeEOF(err))
	}
	frame, ok := m.(*image.Paletted)
	if !ok {
		return nil, fmt.Errorf("image: decoding GIF: unexpected decoded type %T", m)
	}
	lut := paletteRGB(frame.Palette)
	fill := lut[max(s.transparent, 0)]
	out := &RGB{W: s.width, H: s.height, Pix: make([]uint8, s.width*s.height*3)}
	for i := 0; i < len(out.Pix); i += 3 {
		copy(out.Pix[i:i+3], fill[:])
	}
	r := frame.Bounds().Intersect(image.Rect(0, 0, s.width, s.height))
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := lut[frame.Pix[frame.PixOffset(x, y)]]
			copy(out.Pix[(y*s.width+x)*3:], c[:])
		}
	}
	return out, nil
}

// readGIFScreen reads a GIF from its signature up to and including the first image
// descriptor, and returns those bytes, edited so that image/gif decodes the frame as
// Pillow does: transparency flags cleared (Pillow's convert('RGB') ignores them) and
// the logical screen grown to contain the frame (Pillow grows it too; image/gif
// would reject the file).
func readGIFScreen(br *bufio.Reader) ([]byte, gifScreen, error) {
	s := gifScreen{transparent: -1}
	var buf bytes.Buffer
	read := func(n int) ([]byte, error) {
		start := buf.Len()
		if _, err := io.CopyN(&buf, br, int64(n)); err != nil {
			return nil, err
		}
		return buf.Bytes()[start:], nil
	}
	// Signature (6 bytes) and logical screen descriptor (7 bytes).
	hdr, err := read(13)
	if err != nil {
		return nil, s, err
	}
	s.width = int(binary.LittleEndian.Uint16(hdr[6:]))
	s.height = int(binary.LittleEndian.Uint16(hdr[8:]))
	if flags := hdr[10]; flags&0x80 != 0 {
		if _, err := read(3 << (flags&7 + 1)); err != nil { // global colour table
			return nil, s, err
		}
	}
	for {
		intro, err := read(1)
		if err != nil {
			return nil, s, err
		}
		switch intro[0] {
		case 0x21: // extension: a label, then data sub-blocks up to an empty one
			label, err := read(1)
			if err != nil {
				return nil, s, err
			}
			for first := true; ; first = false {
				n, err := read(1)
				if err != nil {
					return nil, s, err
				}
				if n[0] == 0 {
					break
				}
				block, err := read(int(n[0]))
				if err != nil {
					return nil, s, err
				}
				// Graphic control extension: packed flags, delay (2), transparent index.
				if label[0] == 0xf9 && first && len(block) >= 4 && block[0]&1 != 0 {
					s.transparent = int(block[3])
					block[0] &^= 1
				}
			}
		case 0x2c: // image descriptor: left, top, width, height, flags
			d, err := read(9)
			if err != nil {
				return nil, s, err
			}
			left, top := int(binary.LittleEndian.Uint16(d[0:])), int(binary.LittleEndian.Uint16(d[2:]))
			fw, fh := int(binary.LittleEndian.Uint16(d[4:])), int(binary.LittleEndian.Uint16(d[6:]))
			s.frame = image.Rect(left, top, left+fw, top+fh)
			if s.frame.Max.X > s.width || s.frame.Max.Y > s.height {
				s.width, s.height = max(s.width, s.frame.Max.X), max(s.height, s.frame.Max.Y)
				if s.width > 0xffff || s.height > 0xffff {
					return nil, s, fmt.Errorf("first frame %v does not fit a GIF screen", s.frame)
				}
				lsd := buf.Bytes()[6:10]
				binary.LittleEndian.PutUint16(lsd[0:], uint16(s.width))
				binary.LittleEndian.PutUint16(lsd[2:], uint16(s.height))
			}
			return buf.Bytes(), s, nil
		case 0x3b:
			return nil, s, errors.New("no image before the trailer")
		default:
			return nil, s, fmt.Errorf("unknown block type 0x%02x", intro[0])
		}
	}
}
