package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/demo"
	"github.com/cogvlm-web/cogvlm-web/model/grounding"
	"github.com/cogvlm-web/cogvlm-web/model/imageproc"
	"github.com/cogvlm-web/cogvlm-web/model/pkg"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
)

// writeWidePNG writes a flat grey 640×240 image: non-square, so that x and y scale apart.
func writeWidePNG(t *testing.T, dir string) string {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, 640, 240))
	for i := range m.Pix {
		m.Pix[i] = 0x80
		if i%4 == 3 {
			m.Pix[i] = 0xff // opaque
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "wide.png")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// demoPackage converts the demo checkpoint into a package, as ./build.sh does.
func demoPackage(t *testing.T) string {
	t.Helper()
	hf, dir := filepath.Join(t.TempDir(), "hf"), filepath.Join(t.TempDir(), "demo")
	if err := demo.Write(hf); err != nil {
		t.Fatal(err)
	}
	if err := pkg.Convert(hf, dir, pkg.ConvertOptions{Quant: quant.Q4}); err != nil {
		t.Fatal(err)
	}
	return dir
}

var wideBoxes = []grounding.PixelBox{
	{X0: 64, Y0: 60, X1: 320, Y1: 180, Label: "The dog"},
	{X0: 352, Y0: 24, X1: 448, Y1: 96, Label: "two cats"},
	{X0: 480, Y0: 120, X1: 633.6, Y1: 228, Label: "two cats"},
}

// TestGenerateJSONBoxes runs generate --json on a package: the demo's greedy answer is
// noise without boxes ("boxes": [], and --boxes-out is the image as it is); then the same
// result-writing path on generated ids that the package's tokenizer decodes to a grounding
// answer reports its boxes in pixels of the wide image.
func TestGenerateJSONBoxes(t *testing.T) {
	dir := demoPackage(t)
	tmp := t.TempDir()
	img := writeWidePNG(t, tmp)
	out := filepath.Join(tmp, "boxes.png")
	code, stdout, stderr := cli(t, "", "generate", "--model", dir, "--image", img, "--query", "Where is the dog? answer in [[x0,y0,x1,y1]] format.",
		"--template", "base", "--temperature", "0", "--max-new-tokens", "4", "--json", "--boxes-out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res struct {
		Text  string               `json:"generated_text"`
		Boxes []grounding.PixelBox `json:"boxes"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if !strings.Contains(stdout, `"boxes":[]`) || len(grounding.Parse(res.Text)) != 0 {
		t.Errorf("the demo's answer %q: want \"boxes\":[] in %s", res.Text, stdout)
	}
	drawn, err := imageproc.DecodeFile(out, 0)
	if err != nil {
		t.Fatal(err)
	}
	if drawn.W != 640 || drawn.H != 240 || drawn.Pix[0] != 0x80 {
		t.Errorf("--boxes-out without boxes: %d×%d, first byte %d; want the image as it is", drawn.W, drawn.H, drawn.Pix[0])
	}

	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	answer := "The dog[[100,250,500,750]] is next to two cats[[550,100,700,400;750,500,990,950]]."
	r := &model.Result{GeneratedIDs: tok.Encode(answer)}
	text := tok.Decode(r.GeneratedIDs)
	if text != answer {
		t.Fatalf("the tokenizer gives back %q for %q", text, answer)
	}
	boxes, err := answerBoxes(generateOpts{image: img, boxesOut: out}, text)
	if err != nil {
		t.Fatal(err)
	}
	var line bytes.Buffer
	if err := writeJSONResult(env{stdout: &line, stderr: &bytes.Buffer{}}, r, text, boxes, 0); err != nil {
		t.Fatal(err)
	}
	res.Boxes = nil
	if err := json.Unmarshal(line.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Boxes, wideBoxes) {
		t.Errorf("boxes %+v\nwant %+v", res.Boxes, wideBoxes)
	}
	if !strings.Contains(line.String(), `"boxes":[{"x0":64,"y0":60,"x1":320,"y1":180,"label":"The dog"},`) {
		t.Errorf("the JSON line: %s", line.String())
	}
	if drawn, err = imageproc.DecodeFile(out, 0); err != nil {
		t.Fatal(err)
	}
	if got := rgbAt(drawn, 64, 100); got != boxColors[0] {
		t.Errorf("--boxes-out: the left edge of box 1 is %v, want %v", got, boxColors[0])
	}
}

func rgbAt(m *imageproc.RGB, x, y int) color.RGBA {
	p := m.Pix[3*(y*m.W+x):]
	return color.RGBA{p[0], p[1], p[2], 0xff}
}

// TestDrawBoxes checks the outline of each box on the pixels that hold its corners, the
// image around and inside it untouched.
func TestDrawBoxes(t *testing.T) {
	img := &imageproc.RGB{W: 640, H: 240, Pix: bytes.Repeat([]byte{0x80}, 640*240*3)}
	out := drawBoxes(img, wideBoxes)
	grey := color.RGBA{0x80, 0x80, 0x80, 0xff}
	for _, c := range []struct {
		x, y int
		want color.RGBA
	}{
		{64, 100, boxColors[0]},  // left edge of box 1
		{65, 100, boxColors[0]},  // 2 px stroke
		{66, 100, grey},          // inside
		{63, 100, grey},          // outside
		{320, 179, boxColors[0]}, // bottom-right corner pixel
		{321, 180, grey},         // just outside it
		{200, 180, boxColors[0]}, // bottom edge
		{200, 181, grey},
		{633, 200, boxColors[2]}, // 633.6 lies in pixel 633
		{634, 200, grey},
		{400, 24, boxColors[1]}, // top edge of box 2
	} {
		if got := out.RGBAAt(c.x, c.y); got != c.want {
			t.Errorf("pixel (%d, %d) is %v, want %v", c.x, c.y, got, c.want)
		}
	}
	// The label band above box 1 carries white text.
	white := 0
	for y := 60 - 15; y < 60; y++ {
		for x := 64; x < 140; x++ {
			if out.RGBAAt(x, y) == (color.RGBA{0xff, 0xff, 0xff, 0xff}) {
				white++
			}
		}
	}
	if white == 0 {
		t.Error("no label above box 1")
	}
}

func TestBoxesOutUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--boxes-out", "x.png"}, "--boxes-out draws on the image: give --image too"},
		{[]string{"--boxes-out", "x.jpg", "--image", "a.png"}, `--boxes-out writes a PNG: want a FILE.png, not "x.jpg"`},
	} {
		code, _, stderr := cli(t, "", append([]string{"generate", "--model", "m", "--query", "q"}, c.args...)...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 saying %q", c.args, code, stderr, c.want)
		}
	}
}
