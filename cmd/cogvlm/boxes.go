package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/cogvlm-web/cogvlm-web/model/grounding"
	"github.com/cogvlm-web/cogvlm-web/model/imageproc"
)

// boxesFlags adds the grounding flag of generate.
func boxesFlags(fs *flag.FlagSet, o *generateOpts) {
	fs.StringVar(&o.boxesOut, "boxes-out", "", "write a copy of --image with the answer's [[x0,y0,x1,y1]] boxes drawn to `FILE.png`")
}

// checkBoxesUsage refuses --boxes-out without an image to draw on.
func (o *generateOpts) checkBoxesUsage() error {
	switch {
	case o.boxesOut == "":
		return nil
	case o.image == "":
		return usagef("--boxes-out draws on the image: give --image too")
	case !strings.EqualFold(filepath.Ext(o.boxesOut), ".png"):
		return usagef("--boxes-out writes a PNG: want a FILE.png, not %q", o.boxesOut)
	}
	return nil
}

// answerBoxes finds the grounding boxes of the answer text (model/grounding), in pixels
// of the original --image, and writes --boxes-out. Without an image there are no pixels
// to map to, and no boxes. The image is decoded again only when it is needed.
func answerBoxes(o generateOpts, text string) ([]grounding.PixelBox, error) {
	spans := grounding.Parse(text)
	if o.image == "" || (len(spans) == 0 && o.boxesOut == "") {
		return []grounding.PixelBox{}, nil
	}
	img, err := imageproc.DecodeFile(o.image, 0)
	if err != nil {
		return nil, err
	}
	boxes := grounding.Pixels(spans, img.W, img.H)
	if o.boxesOut != "" {
		if err := writeBoxesPNG(o.boxesOut, drawBoxes(img, boxes)); err != nil {
			return nil, err
		}
	}
	return boxes, nil
}

// boxColors are the page's box colours (web/boxes.js), in the same order.
var boxColors = []color.RGBA{
	{0xe0, 0x31, 0x31, 0xff}, {0x1c, 0x7e, 0xd6, 0xff}, {0x2f, 0x9e, 0x44, 0xff}, {0xf0, 0x8c, 0x00, 0xff},
	{0xae, 0x3e, 0xc9, 0xff}, {0x0c, 0x85, 0x99, 0xff}, {0xd6, 0x33, 0x6c, 0xff}, {0x5c, 0x94, 0x0d, 0xff},
}

// boxRect is a box's outline in whole pixels: from the pixel holding the top-left corner
// to the one holding the bottom-right corner, inside the image.
func boxRect(b grounding.PixelBox, w, h int) image.Rectangle {
	clamp := func(v float64, n int) int { return min(max(int(math.Floor(v)), 0), n-1) }
	return image.Rect(clamp(b.X0, w), clamp(b.Y0, h), clamp(b.X1, w)+1, clamp(b.Y1, h)+1)
}

// drawBoxes returns a copy of img with each box outlined in its colour and its number
// and label written on a band of that colour above it (inside it at the top edge).
func drawBoxes(img *imageproc.RGB, boxes []grounding.PixelBox) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, img.W, img.H))
	for i := range img.W * img.H {
		copy(out.Pix[4*i:4*i+3], img.Pix[3*i:3*i+3])
		out.Pix[4*i+3] = 0xff
	}
	stroke := max(2, min(img.W, img.H)/200) // visible on a phone photo and on a thumbnail
	face := basicfont.Face7x13
	for i, b := range boxes {
		c := boxColors[i%len(boxColors)]
		r := boxRect(b, img.W, img.H)
		for _, edge := range []image.Rectangle{
			{r.Min, image.Pt(r.Max.X, r.Min.Y+stroke)}, {image.Pt(r.Min.X, r.Max.Y-stroke), r.Max},
			{r.Min, image.Pt(r.Min.X+stroke, r.Max.Y)}, {image.Pt(r.Max.X-stroke, r.Min.Y), r.Max},
		} {
			fill(out, edge.Intersect(r), c)
		}
		text := fmt.Sprint(i + 1)
		if b.Label != "" {
			text += " " + b.Label
		}
		width := font.MeasureString(face, text).Ceil() + 6
		top := r.Min.Y - face.Height - 2
		if top < 0 {
			top = r.Min.Y
		}
		band := image.Rect(r.Min.X, top, r.Min.X+width, top+face.Height+2).Intersect(out.Bounds())
		fill(out, band, c)
		d := font.Drawer{Dst: out, Src: image.White, Face: face, Dot: fixed.P(r.Min.X+3, top+face.Ascent+1)}
		d.DrawString(text)
	}
	return out
}

func fill(m *image.RGBA, r image.Rectangle, c color.RGBA) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			m.SetRGBA(x, y, c)
		}
	}
}

// writeBoxesPNG writes the PNG through a temporary file in the same folder, so that a
// failure leaves no half-written image behind.
func writeBoxesPNG(path string, m image.Image) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".boxes-*.png")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing is left to remove
	if err := png.Encode(tmp, m); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %v", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
