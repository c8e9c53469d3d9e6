package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/cogvlm-web/cogvlm-web/internal/rehearsal"
)

// groundingCases is the parser table shared by model/grounding (Go) and web/grounding.js.
const groundingCases = "../../model/grounding/testdata/cases.json"

// TestGroundingParser runs the table of model/grounding's cases on web/grounding.js in
// Chromium: the same groups, labels and pixels as the Go parser, every prefix of a case
// giving a prefix of its groups (a box split across streamed tokens), and the API's
// answerBoxes on real images.
func TestGroundingParser(t *testing.T) {
	f := getFixture(t)
	srv := f.startServer(t)
	tb := openTab(t, startBrowser(t))
	tb.do(chromedp.Navigate(srv.URL + "e2e/unit.html"))
	table, err := os.ReadFile(groundingCases)
	if err != nil {
		t.Fatal(err)
	}
	type span struct {
		Text  string   `json:"text"`
		Label string   `json:"label"`
		Boxes [][4]int `json:"boxes"`
	}
	type pixelBox struct{ X0, Y0, X1, Y1 float64 }
	var want struct {
		Cases []struct {
			Name   string     `json:"name"`
			Spans  []span     `json:"spans"`
			Width  int        `json:"width"`
			Pixels []pixelBox `json:"pixels"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(table, &want); err != nil {
		t.Fatalf("%s: %v", groundingCases, err)
	}
	raw := eval[[]byte](tb, fmt.Sprintf(`(async () => {
		const { parseBoxes, toPixels } = await import('/grounding.js');
		const shape = (spans) => spans.map((s) => ({ text: s.text, label: s.label, boxes: s.boxes.map((b) => [b.x0, b.y0, b.x1, b.y1]) }));
		return (%s).cases.map((c) => {
			const spans = parseBoxes(c.text);
			const whole = JSON.stringify(shape(spans));
			let prefixes = '';
			for (let n = 0; n <= c.text.length && !prefixes; n++) {
				const got = JSON.stringify(shape(parseBoxes(c.text.slice(0, n))));
				if (!whole.startsWith(got.slice(0, -1))) prefixes = 'prefix ' + JSON.stringify(c.text.slice(0, n)) + ' gives ' + got;
			}
			return { spans: shape(spans), pixels: c.width ? toPixels(spans, c.width, c.height) : null, prefixes };
		});
	})()`, table))
	var got []struct {
		Spans    []span     `json:"spans"`
		Pixels   []pixelBox `json:"pixels"`
		Prefixes string     `json:"prefixes"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("grounding.js: %v\n%s", err, raw)
	}
	if len(got) != len(want.Cases) {
		t.Fatalf("grounding.js ran %d cases of %d", len(got), len(want.Cases))
	}
	for i, c := range want.Cases {
		if !reflect.DeepEqual(got[i].Spans, c.Spans) {
			t.Errorf("%s: parseBoxes\n got %+v\nwant %+v", c.Name, got[i].Spans, c.Spans)
		}
		if c.Width > 0 && !reflect.DeepEqual(got[i].Pixels, c.Pixels) {
			t.Errorf("%s: toPixels\n got %+v\nwant %+v", c.Name, got[i].Pixels, c.Pixels)
		}
		if got[i].Prefixes != "" {
			t.Errorf("%s: %s", c.Name, got[i].Prefixes)
		}
	}

	// answerBoxes: the pixels of the image as given, whose size generate's result has.
	boxes := eval[[]byte](tb, `import('/grounding.js').then(({ answerBoxes }) => {
		const text = 'The dog[[100,250,500,750]] and two cats[[550,100,700,400;750,500,990,950]].';
		return [answerBoxes(text, { width: 640, height: 240 }), answerBoxes(text, null), answerBoxes('no box', { width: 640, height: 240 })];
	})`)
	wantBoxes := `[[{"x0":64,"y0":60,"x1":320,"y1":180,"label":"The dog"},{"x0":352,"y0":24,"x1":448,"y1":96,"label":"two cats"},{"x0":480,"y0":120,"x1":633.6,"y1":228,"label":"two cats"}],[],[]]`
	if string(boxes) != wantBoxes {
		t.Errorf("answerBoxes: %s\nwant %s", boxes, wantBoxes)
	}
	models := eval[[]bool](tb, `import('/grounding.js').then(({ isGroundingModel }) => [
		isGroundingModel({ name: 'cogvlm-grounding-generalist' }),
		isGroundingModel({ name: 'models', nameOrPath: 'cogvlm-grounding-base' }),
		isGroundingModel({ name: 'cogvlm-chat', nameOrPath: '' }),
		isGroundingModel(null)])`)
	if !reflect.DeepEqual(models, []bool{true, true, false, false}) {
		t.Errorf("isGroundingModel: %v, want [true true false false]", models)
	}
}

// groundingImage is a test photo with the boxes of the known answer painted in, so that
// the screenshots show whether the drawing lands on them.
type groundingImage struct {
	name          string
	width, height int
	answer        []string     // the answer, in streamed pieces
	boxes         [][4]float64 // its boxes in image pixels
}

var (
	wideImage = groundingImage{
		name: "wide.png", width: 640, height: 240,
		answer: []string{"The dog[[100,250,5", "00,750]] is next to two cats[[550,", "100,700,400;750,500,990,950]] on a sofa."},
		boxes:  [][4]float64{{64, 60, 320, 180}, {352, 24, 448, 96}, {480, 120, 633.6, 228}},
	}
	tallImage = groundingImage{
		name: "tall.png", width: 300, height: 800,
		answer: []string{"[[100,250,500,750]]"},
		boxes:  [][4]float64{{30, 200, 150, 600}},
	}
)

func (g groundingImage) write(t *testing.T, dir string) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, g.width, g.height))
	for y := range g.height {
		for x := range g.width {
			img.Set(x, y, color.RGBA{uint8(200 - 80*y/g.height), uint8(210 - 60*x/g.width), 190, 255})
		}
	}
	fills := []color.RGBA{{120, 80, 40, 255}, {60, 60, 60, 255}, {230, 230, 230, 255}}
	for i, b := range g.boxes {
		for y := int(b[1]); y < int(math.Ceil(b[3])); y++ {
			for x := int(b[0]); x < int(math.Ceil(b[2])); x++ {
				img.Set(x, y, fills[i%len(fills)])
			}
		}
	}
	path := filepath.Join(dir, g.name)
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := png.Encode(out, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeAnswers makes the page's model answer what the test feeds it: the demo's answers are
// noise, and the page's rendering path is what is tested. window.feed(piece) streams a
// piece as a token, window.finish() ends the answer.
const fakeAnswers = `import('/cogvlm.js').then(({ CogVLM }) => {
	CogVLM.prototype.generate = function ({ onToken, signal }) {
		return new Promise((resolve, reject) => {
			let text = '';
			window.feed = (piece) => { text += piece; onToken(0, piece); return true; };
			window.finish = () => { resolve({ tokenIds: [], text, inputIds: [], boxes: [], stats: { visionMs: 1, prefillMs: 1, prefillTokens: 1, decodeMs: 1, decodeTokens: 1 } }); return true; };
			signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { code: 'aborted' })));
		});
	};
	return true;
})`

type rect struct{ Left, Top, Right, Bottom float64 }

// drawn is where the page draws the boxes, and the preview's place and natural size.
type drawn struct {
	Image         rect
	Width, Height float64 // natural size
	Boxes         []rect
	Chips         int
	Layer         bool // shown
}

func (tb *tab) drawn() drawn {
	tb.t.Helper()
	raw := eval[[]byte](tb, `(() => {
		const r = (el) => { const b = el.getBoundingClientRect(); return { left: b.left, top: b.top, right: b.right, bottom: b.bottom }; };
		const img = document.getElementById('preview');
		const layer = document.getElementById('box-layer');
		return { image: r(img), width: img.naturalWidth, height: img.naturalHeight,
			boxes: [...layer.querySelectorAll('.box')].map(r), chips: document.querySelectorAll('#conversation .box-chip').length,
			layer: !layer.hidden && layer.getClientRects().length > 0 };
	})()`)
	var d drawn
	if err := json.Unmarshal(raw, &d); err != nil {
		tb.t.Fatal(err)
	}
	return d
}

// checkPositions checks that box i is drawn where g.boxes[i] is on the preview, within a
// pixel: image pixels scaled by the preview's size, x with its width, y with its height.
func checkPositions(t *testing.T, what string, d drawn, g groundingImage, n int) {
	t.Helper()
	if d.Width != float64(g.width) || d.Height != float64(g.height) {
		t.Fatalf("%s: the preview is %v×%v, want %s's %d×%d", what, d.Width, d.Height, g.name, g.width, g.height)
	}
	if len(d.Boxes) != n {
		t.Fatalf("%s: %d boxes drawn, want %d", what, len(d.Boxes), n)
	}
	sx := (d.Image.Right - d.Image.Left) / d.Width
	sy := (d.Image.Bottom - d.Image.Top) / d.Height
	for i, b := range d.Boxes {
		p := g.boxes[i]
		want := rect{d.Image.Left + p[0]*sx, d.Image.Top + p[1]*sy, d.Image.Left + p[2]*sx, d.Image.Top + p[3]*sy}
		if math.Abs(b.Left-want.Left) > 1 || math.Abs(b.Top-want.Top) > 1 || math.Abs(b.Right-want.Right) > 1 || math.Abs(b.Bottom-want.Bottom) > 1 {
			t.Errorf("%s: box %d is drawn at %+v, want %+v (image pixels %v on a preview at %+v)", what, i+1, b, want, p, d.Image)
		}
	}
}

func setViewport(width, height int64, mobile bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: width, Height: height, DeviceScaleFactor: 1, Mobile: mobile})
		return err
	})
}

func hover(x, y float64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseMoved, X: x, Y: y})
		return err
	})
}

// TestGroundingPage loads the demo package from a folder named like the grounding
// variant, checks that the page offers the grounding prompts, then feeds known answers
// through the page's rendering path and checks the boxes on non-square images, as they
// stream, at desktop and phone width (screenshots grounding-*.png).
func TestGroundingPage(t *testing.T) {
	f := getFixture(t)
	srv := f.startServer(t)
	tb := openTab(t, startBrowser(t))
	tmp := t.TempDir()
	folder := filepath.Join(tmp, "cogvlm-grounding-generalist")
	entries, err := os.ReadDir(f.demo)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := rehearsal.CopyFile(filepath.Join(f.demo, e.Name()), filepath.Join(folder, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	tb.do(setViewport(1280, 900, false), chromedp.Navigate(srv.URL))
	tb.waitState("idle", loadTimeout)

	t.Log("== the JS API's result carries boxes, and the size of the image as given")
	// A small PNG goes to the engine as it is (its size is the engine's, read from the
	// header); a 3000×1000 one is refused by the engine from its header and downscaled by
	// the worker (its size is the one given, not the 2048×683 the engine decoded).
	api := eval[[]byte](tb, `(async () => {
		const { CogVLM } = await import('/cogvlm.js');
		const png = (w, h) => { const c = new OffscreenCanvas(w, h); c.getContext('2d').fillRect(0, 0, w, h); return c.convertToBlob({ type: 'image/png' }); };
		const model = await CogVLM.load('/models/demo/manifest.json');
		const out = await model.generate({ query: 'Where is the dog? answer in [[x0,y0,x1,y1]] format.', maxNewTokens: 2, temperature: 0 });
		const small = await model.generate({ image: await png(40, 30), query: 'What is it?', maxNewTokens: 1 });
		const large = await model.generate({ image: await png(3000, 1000), query: 'What is it?', maxNewTokens: 1 });
		await model.dispose();
		return [Array.isArray(out.boxes) ? out.boxes.length : -1, out.image, small.image, large.image, model.info.maxImageSide];
	})()`)
	if want := `[0,null,{"width":40,"height":30},{"width":3000,"height":1000},2048]`; string(api) != want {
		t.Errorf("the JS API's boxes count, image sizes and maxImageSide: %s, want %s", api, want)
	}

	t.Log("== a grounding model offers its prompts")
	if !eval[bool](tb, `document.getElementById('grounding-prompts').hidden`) {
		t.Error("the grounding prompts are offered with no grounding model loaded")
	}
	tb.do(chromedp.SetUploadFiles(chromedp.ID("folder-input"), []string{folder}))
	tb.waitState("ready", loadTimeout)
	if eval[bool](tb, `document.getElementById('grounding-prompts').hidden`) {
		t.Fatalf("the page does not offer the grounding prompts for %s; page: %s", folder, tb.describe())
	}
	tb.do(chromedp.Click(chromedp.ID("prompt-where")))
	if q := eval[[]any](tb, `(() => { const q = document.getElementById('query'); return [q.value, q.value.slice(q.selectionStart, q.selectionEnd), document.activeElement === q]; })()`); !reflect.DeepEqual(q, []any{"Where is the object? answer in [[x0,y0,x1,y1]] format.", "the object", true}) {
		t.Errorf("Where is …? gives %q", q)
	}
	tb.do(chromedp.Click(chromedp.ID("prompt-describe")))
	if q := eval[string](tb, `document.getElementById('query').value`); q != "Can you provide a description of the image and include the coordinates [[x0,y0,x1,y1]] for each mentioned object?" {
		t.Errorf("Describe, with boxes gives %q", q)
	}
	eval[bool](tb, `(document.getElementById('query').value = '', true)`)

	t.Log("== boxes stream in on a wide image")
	tb.do(chromedp.SetUploadFiles(chromedp.ID("image-input"), []string{wideImage.write(t, tmp)}))
	tb.waitFor("the preview", `document.getElementById('preview').complete && document.getElementById('preview').naturalWidth === 640`, 10*time.Second)
	eval[bool](tb, fakeAnswers)
	g := wideImage
	askUI(tb, question{Query: "Describe the image with boxes.", Template: "base", MaxNewTokens: 64}, func() {
		tb.waitFor("the fake answer", `typeof window.feed === 'function'`, answerTimeout)
		eval[bool](tb, fmt.Sprintf(`window.feed(%q)`, g.answer[0]))
		if d := tb.drawn(); len(d.Boxes) != 0 || d.Chips != 0 {
			t.Errorf("an unclosed box is drawn: %+v", d)
		}
		if a := lastAnswer(tb); a.Text != g.answer[0] {
			t.Errorf("the answer shows %q, want the unclosed box as text %q", a.Text, g.answer[0])
		}
		eval[bool](tb, fmt.Sprintf(`window.feed(%q)`, g.answer[1]))
		d := tb.drawn()
		checkPositions(t, "one box closed", d, g, 1)
		if d.Chips != 1 || !d.Layer {
			t.Errorf("after the first box: %d chips, layer shown %v", d.Chips, d.Layer)
		}
		// Focus stays on a chip while the answer grows.
		eval[bool](tb, `(document.querySelector('.box-chip').focus(), true)`)
		eval[bool](tb, fmt.Sprintf(`window.feed(%q)`, g.answer[2]))
		if !eval[bool](tb, `document.activeElement === document.querySelector('.box-chip') && document.querySelector('.box[data-active]') !== null`) {
			t.Error("the focused chip lost its focus or its highlight as the answer grew")
		}
		eval[bool](tb, `window.finish()`)
	})
	d := tb.drawn()
	checkPositions(t, "desktop", d, g, 3)
	if d.Chips != 2 {
		t.Errorf("%d chips, want 2 (one per group)", d.Chips)
	}
	if s := tb.text("boxes-count"); s != "(3 boxes)" {
		t.Errorf("the toggle says %q", s)
	}
	labels := eval[[]string](tb, `[...document.querySelectorAll('#box-layer .box-label')].map((l) => l.textContent)`)
	if !reflect.DeepEqual(labels, []string{"1 The dog", "2 two cats", "3 two cats"}) {
		t.Errorf("box labels %q", labels)
	}
	chip := eval[string](tb, `document.querySelectorAll('.box-chip')[1].getAttribute('aria-label')`)
	if want := "box 2, two cats, x 352 to 448, y 24 to 96 of 640 × 240 pixels; box 3, two cats, x 480 to 634, y 120 to 228 of 640 × 240 pixels. Shows it on the image."; chip != want {
		t.Errorf("the chip's accessible name is %q, want %q", chip, want)
	}
	if a := lastAnswer(tb); a.Status != "done" || a.Text != "The dog is next to two cats on a sofa." {
		t.Errorf("answer %+v: want the text around the chips", a)
	}

	// Keyboard: focusing the second chip highlights boxes 2 and 3.
	eval[bool](tb, `(document.querySelectorAll('.box-chip')[1].focus(), true)`)
	if active := eval[[]bool](tb, `[...document.querySelectorAll('#box-layer .box')].map((b) => b.hasAttribute('data-active'))`); !reflect.DeepEqual(active, []bool{false, true, true}) {
		t.Errorf("focusing chip 2 highlights boxes %v", active)
	}
	tb.screenshot("grounding-desktop")
	eval[bool](tb, `(document.activeElement.blur(), true)`)
	// Hovering box 1 highlights its chip, and back (measured again: focus may scroll).
	b := tb.drawn().Boxes[0]
	tb.do(hover(1, 1), hover((b.Left+b.Right)/2, (b.Top+b.Bottom)/2)) // from outside, as a pointer comes
	if !eval[bool](tb, `document.querySelectorAll('.box-chip')[0].hasAttribute('data-active') && document.querySelectorAll('#box-layer .box')[0].hasAttribute('data-active')`) {
		t.Errorf("hovering box 1 at %+v does not highlight its chip", b)
	}
	tb.do(hover(1, 1))
	if eval[int](tb, `document.querySelectorAll('[data-active]').length`) != 0 {
		t.Error("leaving the box leaves a highlight")
	}
	// The toggle hides and shows them.
	tb.do(chromedp.Click(chromedp.ID("show-boxes")))
	if tb.drawn().Layer {
		t.Error("the toggle does not hide the boxes")
	}
	tb.do(chromedp.Click(chromedp.ID("show-boxes")))
	if !tb.drawn().Layer {
		t.Error("the toggle does not show the boxes again")
	}

	t.Log("== phone width: the drawing scales with the preview")
	tb.do(setViewport(390, 844, true))
	tb.waitFor("the narrow preview", `document.getElementById('preview').getBoundingClientRect().width < 390`, 10*time.Second)
	checkPositions(t, "phone", tb.drawn(), g, 3)
	if w := eval[int](tb, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("at phone width the page is %d px wide", w)
	}
	tb.screenshot("grounding-phone")

	t.Log("== a tall image, its preview limited by height")
	g = tallImage
	tb.do(chromedp.SetUploadFiles(chromedp.ID("image-input"), []string{g.write(t, tmp)}))
	tb.waitFor("the tall preview", `document.getElementById('preview').complete && document.getElementById('preview').naturalWidth === 300`, 10*time.Second)
	if len(tb.drawn().Boxes) != 0 {
		t.Error("a new image keeps the old answer's boxes")
	}
	askUI(tb, question{Query: "Where is the block? answer in [[x0,y0,x1,y1]] format.", Template: "base", MaxNewTokens: 64}, func() {
		tb.waitFor("the fake answer", `typeof window.feed === 'function'`, answerTimeout)
		for _, piece := range g.answer {
			eval[bool](tb, fmt.Sprintf(`window.feed(%q)`, piece))
		}
		eval[bool](tb, `window.finish()`)
	})
	d = tb.drawn()
	if h := d.Image.Bottom - d.Image.Top; h > 321 { // #preview's max-height: 20rem
		t.Errorf("the tall preview is %+v: want it at most 320 px high", d.Image)
	}
	checkPositions(t, "tall", d, g, 1)
	tb.screenshot("grounding-phone-tall")
	for _, x := range tb.exceptions {
		t.Errorf("uncaught exception: %s", x)
	}
}
