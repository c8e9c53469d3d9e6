package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/cogvlm-web/cogvlm-web/internal/rehearsal"
	"github.com/cogvlm-web/cogvlm-web/model/format"
)

const (
	loadTimeout   = 90 * time.Second
	answerTimeout = 90 * time.Second
)

// The questions. SwiftShader decodes a token of the demo model in about 0.3 s, so answers
// are kept to a few tokens; the stopped one is long enough never to finish first.
var (
	q1 = question{Query: "What is in this picture?", MaxNewTokens: 8} // the default template: vicuna, as it has no image
	q2 = question{Query: "Describe it in detail.", Template: "chat", MaxNewTokens: 64}
	q3 = question{Query: "And the colours?", Template: "chat", MaxNewTokens: 8}
)

// TestApp drives the page through a user's session, in order: load the demo package with
// progress, ask, stop mid-answer, ask a follow-up, ask about images, fill the context,
// recover a corrupted stored shard, resume an interrupted download, reload with the server
// stopped and answer from the stored copy and from a folder on disk. Every request the page
// and its workers made must have stayed on the server's origin.
func TestApp(t *testing.T) {
	f := getFixture(t)
	srv, rec, tb := f.session(t, f.models)
	origin := strings.TrimSuffix(srv.URL, "/")
	manifest := readManifest(t, f.demo)
	shardPath := func(i int) string { return "/models/demo/" + manifest.Shards[i].File }
	if len(manifest.Shards) < 5 {
		t.Fatalf("the test package has %d shards, want at least 5 (more than the 4 downloaded at once)", len(manifest.Shards))
	}
	ref1 := f.reference(t, q1)

	t.Log("== the empty page")
	tb.do(chromedp.Navigate(srv.URL))
	tb.waitState("idle", loadTimeout)
	if v := eval[string](tb, `document.getElementById('model-select').value`); !strings.HasSuffix(v, "/models/demo/manifest.json") {
		t.Errorf("the model list selects %q, want the demo package", v)
	}
	if eval[bool](tb, `document.getElementById('demo-note').hidden`) {
		t.Error("with the demo selected, the page does not say that it has random weights")
	}
	tb.screenshot("01-empty")
	// The server's CSP stops a request to another origin before it reaches the network.
	violation := eval[string](tb, `new Promise((resolve) => {
		addEventListener('securitypolicyviolation', (e) => resolve(e.effectiveDirective + ' ' + e.blockedURI), { once: true });
		fetch('https://example.com/upload').catch(() => {});
	})`)
	if !strings.HasPrefix(violation, "connect-src https://example.com") {
		t.Errorf("fetching another origin: CSP violation %q, want connect-src https://example.com/upload", violation)
	}

	t.Log("== the JS API: load with progress, stream tokens equal to the CPU reference")
	api := apiLoadAndAsk(t, tb, q1)
	checkProgress(t, api.Progress, manifest)
	if !slices.Equal(api.StreamedIDs, ref1.GeneratedIDs) || !slices.Equal(api.Out.TokenIDs, ref1.GeneratedIDs) {
		t.Errorf("streamed token ids %v, result %v; the CPU reference generated %v", api.StreamedIDs, api.Out.TokenIDs, ref1.GeneratedIDs)
	}
	if !slices.Equal(api.Out.InputIDs, ref1.InputIDs) {
		t.Errorf("input ids %v, the CPU reference's %v", api.Out.InputIDs, ref1.InputIDs)
	}
	if api.Out.Text != ref1.Text || api.StreamedText != ref1.Text {
		t.Errorf("text %q (streamed %q), the CPU reference's %q", api.Out.Text, api.StreamedText, ref1.Text)
	}
	if api.Out.Stats.PrefillTokens != len(ref1.InputIDs) || api.Out.Stats.DecodeTokens < len(ref1.GeneratedIDs)-1 {
		t.Errorf("stats %+v for %d input and %d generated tokens", api.Out.Stats, len(ref1.InputIDs), len(ref1.GeneratedIDs))
	}

	t.Log("== the stored-models panel; loading from the page, with a download in flight")
	tb.do(chromedp.Reload())
	tb.waitState("idle", loadTimeout)
	tb.waitFor("the stored demo in the panel", `document.querySelector('#stored tbody tr td')?.textContent === 'demo'`, 10*time.Second)
	tb.do(chromedp.Click(chromedp.CSS(`#stored tbody button`)))
	tb.waitFor("the stored copy deleted", `!document.getElementById('stored-empty').hidden`, 10*time.Second)
	rec.hold(shardPath(2))
	tb.do(chromedp.Click(chromedp.ID("load")))
	tb.waitFor("a download in flight", `document.getElementById('progress').value > 0 && document.getElementById('progress-text').textContent.startsWith('Downloading')`, loadTimeout)
	waitUntil(t, "shard 2 held", func() bool { return rec.holding(shardPath(2)) }, loadTimeout)
	tb.screenshot("02-loading")
	// Cancel keeps what has come; Resume fetches only the rest.
	tb.do(chromedp.Click(chromedp.ID("cancel-load")))
	tb.waitState("idle", loadTimeout)
	if s := tb.text("load-error-text"); !strings.Contains(s, "cancelled") {
		t.Errorf("after Cancel the page says %q", s)
	}
	rec.release(shardPath(2))
	resumeFetches(t, tb, rec, manifest, "load-error-action")
	if s := tb.text("model-status"); !strings.Contains(s, "demo is ready") || !strings.Contains(s, "stored in this browser") {
		t.Errorf("model status %q", s)
	}
	if eval[bool](tb, `document.getElementById('demo-note').hidden`) {
		t.Error("the page does not say that the demo has random weights")
	}
	// The settings show the engine's defaults: greedy, and the template chosen per question.
	if s := eval[string](tb, `['template', 'max-tokens', 'temperature', 'top-p', 'top-k', 'seed'].map((id) => document.getElementById(id).value).join('|')`); s != "|256|0|1|0|0" {
		t.Errorf("settings after loading: %q, want the defaults |256|0|1|0|0 (auto template, 256 tokens, greedy)", s)
	}

	t.Log("== asking: Enter sends, the answer streams and equals the CPU reference")
	askUI(tb, q1, func() {
		// (On a fast GPU the answer may be complete before the first look.)
		tb.waitFor("a streamed token", `document.querySelector('.answer[data-status=answering]')?.textContent.length > 0 || document.body.dataset.state === 'ready'`, answerTimeout)
		tb.screenshot("03-answering")
	})
	a1 := lastAnswer(tb)
	if a1.Status != "done" || a1.Text != ref1.Text {
		t.Errorf("answer %+v, the CPU reference's %q", a1, ref1.Text)
	}
	if s := tb.text("stat-decode"); !strings.Contains(s, "tokens/s") {
		t.Errorf("decode statistics %q", s)
	}

	t.Log("== Stop mid-answer")
	h2 := q2
	h2.History = [][2]string{{q1.Query, a1.Text}}
	ref2 := f.reference(t, h2)
	if len(ref2.GeneratedIDs) != q2.MaxNewTokens {
		t.Fatalf("the reference answers %q in %d tokens: pick a question the demo answers at length", q2.Query, len(ref2.GeneratedIDs))
	}
	askUI(tb, q2, func() {
		tb.waitFor("a streamed token", `document.querySelector('.answer[data-status=answering]')?.textContent.length > 0`, answerTimeout)
		tb.do(chromedp.Click(chromedp.ID("stop")))
	})
	a2 := lastAnswer(tb)
	if a2.Status != "stopped" || a2.Text == "" || len(a2.Text) >= len(ref2.Text) || !strings.HasPrefix(ref2.Text, a2.Text) {
		t.Errorf("stopped answer %+v, want a proper prefix of the reference's %q", a2, ref2.Text)
	}

	t.Log("== a follow-up: the history holds both earlier turns")
	h3 := q3
	h3.History = [][2]string{{q1.Query, a1.Text}, {q2.Query, a2.Text}}
	ref3 := f.reference(t, h3)
	askUI(tb, q3, nil)
	if a3 := lastAnswer(tb); a3.Status != "done" || a3.Text != ref3.Text {
		t.Errorf("follow-up answer %+v, the CPU reference's %q", a3, ref3.Text)
	}
	// the follow-up says how long its first token took and that the conversation was
	// reused (the stopped answer's tokens included)
	if s := eval[string](tb, `document.querySelector('#conversation .turn:last-child .turn-stats')?.textContent ?? ''`); !strings.HasPrefix(s, "first token ") || !strings.Contains(s, "reused") {
		t.Errorf("the follow-up's stats line %q, want its first token time and what it reused", s)
	}
	tb.screenshot("04-conversation")

	t.Log("== images: a picked file, a large photo, a file that is no image, drag and drop, paste")
	photo := abs(t, filepath.Join(repoRoot, "testdata", "golden", "tiny-chat", "image.png"))
	tb.do(chromedp.SetUploadFiles(chromedp.ID("image-input"), []string{photo}))
	tb.waitFor("the preview", `!document.getElementById('image-box').hidden && document.getElementById('preview').complete`, 10*time.Second)
	if n := eval[int](tb, `document.querySelectorAll('#conversation .turn').length`); n != 0 {
		t.Errorf("a new image keeps %d turns of the old conversation", n)
	}
	qi := question{Query: "What is in this image?", Template: "chat", MaxNewTokens: 8, Image: photo}
	refImage := f.reference(t, qi)
	askUI(tb, qi, nil)
	if a := lastAnswer(tb); a.Status != "done" || a.Text != refImage.Text {
		t.Errorf("answer about the image %+v, the CPU reference's %q", a, refImage.Text)
	}
	if s := tb.text("stat-vision"); !strings.HasSuffix(s, " ms") && !strings.HasSuffix(s, " s") {
		t.Errorf("vision statistics %q after an image question", s)
	}
	big := writeLargePhoto(t, f.tmp)
	tb.do(chromedp.SetUploadFiles(chromedp.ID("image-input"), []string{big}))
	tb.waitFor("the large preview", `document.getElementById('preview').complete && document.getElementById('preview').naturalWidth === 3000`, 10*time.Second)
	askUI(tb, question{Query: "What is in this image?", Template: "chat", MaxNewTokens: 2}, nil)
	if a := lastAnswer(tb); a.Status != "done" {
		t.Errorf("answer about a 3000×2000 photo: %+v; page: %s", a, tb.describe())
	}
	notImage := filepath.Join(f.tmp, "notes.txt")
	os.WriteFile(notImage, []byte("not a picture"), 0o644)
	tb.do(chromedp.SetUploadFiles(chromedp.ID("image-input"), []string{notImage}))
	tb.waitFor("the refusal", `!document.getElementById('image-error').hidden`, 10*time.Second)
	if s := tb.text("image-error"); !strings.Contains(s, "notes.txt") || !strings.Contains(s, "not an image") {
		t.Errorf("refusing a text file: %q", s)
	}

	for _, how := range []struct{ name, event string }{
		{"dropped.png", `document.getElementById('dropzone').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))`},
		{"pasted.png", `document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }))`},
	} {
		eval[bool](tb, fmt.Sprintf(`(async () => {
			const canvas = new OffscreenCanvas(30, 20);
			canvas.getContext('2d').fillRect(0, 0, 30, 20);
			const dt = new DataTransfer();
			dt.items.add(new File([await canvas.convertToBlob({ type: 'image/png' })], %q, { type: 'image/png' }));
			return %s;
		})()`, how.name, how.event))
		tb.waitFor("the image "+how.name, fmt.Sprintf(`document.getElementById('image-caption').textContent.startsWith(%q)`, how.name), 10*time.Second)
	}

	t.Log("== a full context offers a new chat")
	tb.do(chromedp.SetValue(chromedp.ID("max-tokens"), "4000"), chromedp.SendKeys(chromedp.ID("query"), "Tell me everything."), pressEnter())
	tb.waitFor("the context error", `!document.getElementById('chat-error').hidden`, answerTimeout)
	if s := tb.text("chat-error-text"); !strings.Contains(s, "context") || !strings.Contains(s, "4000") {
		t.Errorf("context error %q, want the numbers", s)
	}
	tb.screenshot("05-error-context")
	tb.do(chromedp.Click(chromedp.ID("chat-error-action")))
	if n := eval[int](tb, `document.querySelectorAll('#conversation .turn').length`); n != 0 {
		t.Errorf("New chat left %d turns", n)
	}

	t.Log("== a corrupted stored shard is detected and fetched again")
	corrupted := eval[string](tb, corruptStoredShard(1))
	mark := rec.mark()
	tb.do(chromedp.Click(chromedp.ID("load")))
	tb.waitState("ready", loadTimeout)
	if notes := tb.text("notes"); !strings.Contains(notes, "The stored copy of "+corrupted+" was damaged") {
		t.Errorf("notes %q do not say that %s was damaged", notes, corrupted)
	}
	if got := shardsRequested(rec.since(mark)); !slices.Equal(got, []string{corrupted}) {
		t.Errorf("after corrupting %s the load downloaded %v", corrupted, got)
	}
	if bad := eval[[]string](tb, checkStoredShards); len(bad) > 0 {
		t.Errorf("stored shards that do not match the manifest: %v", bad)
	}

	t.Log("== a download that breaks off resumes where it stopped")
	tb.do(chromedp.Click(chromedp.CSS(`#stored tbody button`)))
	tb.waitFor("the stored copy deleted", `!document.getElementById('stored-empty').hidden`, 10*time.Second)
	rec.fail(shardPath(3))
	tb.do(chromedp.Click(chromedp.ID("load")))
	tb.waitState("idle", loadTimeout)
	if s := tb.text("load-error-text"); !strings.Contains(s, "download stopped") || !strings.Contains(s, manifest.Shards[3].File) {
		t.Errorf("load error %q, want the broken download named", s)
	}
	tb.waitFor("the partial copy in the panel", `document.querySelector('#stored tbody')?.textContent.includes('partial')`, 10*time.Second)
	tb.screenshot("06-error-network")
	if stored := eval[[]string](tb, storedFiles); slices.Contains(stored, manifest.Shards[3].File) || !slices.Contains(stored, manifest.Shards[0].File) {
		t.Errorf("stored after the failure: %v", stored)
	}
	rec.release(shardPath(3))
	resumeFetches(t, tb, rec, manifest, "load-error-action") // Retry

	t.Log("== offline: reload with the server stopped, answer from the stored copy")
	tb.waitFor("the service worker in control", `navigator.serviceWorker.controller !== null`, 30*time.Second)
	srv.Stop()
	tb.do(chromedp.Navigate(srv.URL))
	tb.waitState("idle", loadTimeout)
	if s := tb.text("connection"); !strings.Contains(s, "Offline") {
		t.Errorf("connection status %q with the server stopped", s)
	}
	tb.do(chromedp.Click(chromedp.ID("load")))
	tb.waitState("ready", loadTimeout)
	if s := tb.text("model-status"); !strings.Contains(s, "stored in this browser (offline)") {
		t.Errorf("model status %q offline", s)
	}
	askUI(tb, q1, nil)
	if a := lastAnswer(tb); a.Status != "done" || a.Text != ref1.Text {
		t.Errorf("offline answer %+v, the CPU reference's %q", a, ref1.Text)
	}
	tb.screenshot("07-offline")

	t.Log("== a package folder from disk, with no server")
	// A folder picker (<input webkitdirectory>) is handed the folder itself.
	tb.do(chromedp.SetUploadFiles(chromedp.ID("folder-input"), []string{abs(t, f.demo)}))
	tb.waitFor("the folder's model", `document.body.dataset.state === 'ready' && document.getElementById('model-status').textContent.includes('read from a folder on disk')`, loadTimeout)
	askUI(tb, q1, nil)
	if a := lastAnswer(tb); a.Status != "done" || a.Text != ref1.Text {
		t.Errorf("answer from the folder %+v, the CPU reference's %q", a, ref1.Text)
	}

	t.Log("== phone width, dark theme")
	tb.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 2, Mobile: true}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	}))
	eval[bool](tb, `[...document.querySelectorAll('details')].every((d) => (d.open = true))`) // show every panel
	if w := eval[int](tb, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("at phone width the page is %d px wide: it scrolls sideways", w)
	}
	tb.screenshot("08-phone-dark")

	t.Log("== no WebGPU: the page says which browsers have it")
	nogpu := tb.another()
	nogpu.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `Object.defineProperty(Navigator.prototype, 'gpu', { get() { return undefined; } });`,
		})
		return err
	}), chromedp.Navigate(srv.URL))
	nogpu.waitState("no-webgpu", loadTimeout)
	if s := nogpu.text("fatal-text"); !strings.Contains(s, "Chrome") || !strings.Contains(s, "WebGPU") {
		t.Errorf("no-WebGPU message %q", s)
	}
	nogpu.screenshot("09-error-no-webgpu")

	t.Log("== privacy: every request stayed on the server's origin")
	all := rec.since(0)
	if !slices.ContainsFunc(all, func(u string) bool { return strings.HasSuffix(u, shardPath(0)) }) {
		t.Errorf("the recorder saw no shard download: it misses the worker's requests")
	}
	for _, u := range all {
		if u != origin && !strings.HasPrefix(u, origin+"/") {
			t.Errorf("a request left the origin %s: %s", origin, u)
		}
	}
	for _, x := range append(tb.exceptions, nogpu.exceptions...) {
		t.Errorf("uncaught exception: %s", x)
	}
}

// resumeFetches clicks the button that loads again after a broken load and checks that
// exactly the shards not stored before are downloaded.
func resumeFetches(t *testing.T, tb *tab, rec *recorder, m *format.Manifest, button string) {
	t.Helper()
	stored := eval[[]string](tb, storedFiles)
	var missing []string
	for _, s := range m.Shards {
		if !slices.Contains(stored, s.File) {
			missing = append(missing, s.File)
		}
	}
	if len(missing) == len(m.Shards) {
		t.Errorf("nothing was stored before %s: %v", button, stored)
	}
	mark := rec.mark()
	tb.do(chromedp.Click(chromedp.ID(button)))
	tb.waitState("ready", loadTimeout)
	if got := shardsRequested(rec.since(mark)); !slices.Equal(got, missing) {
		t.Errorf("%s downloaded %v, want exactly the shards not stored before: %v", button, got, missing)
	}
}

// apiResult is what the page's script below returns.
type apiResult struct {
	Progress     []progressEvent `json:"progress"`
	StreamedIDs  []int           `json:"streamedIds"`
	StreamedText string          `json:"streamedText"`
	Out          struct {
		TokenIDs []int               `json:"tokenIds"`
		InputIDs []int               `json:"inputIds"`
		Text     string              `json:"text"`
		Stats    rehearsal.PageStats `json:"stats"`
	} `json:"out"`
}

type progressEvent struct {
	Phase       string  `json:"phase"`
	LoadedBytes float64 `json:"loadedBytes"`
	TotalBytes  float64 `json:"totalBytes"`
	Text        string  `json:"text"`
}

// apiLoadAndAsk uses cogvlm.js as another page embedding the model would.
func apiLoadAndAsk(t *testing.T, tb *tab, q question) apiResult {
	t.Helper()
	// No temperature: the API's default must be greedy, as the reference's --temperature 0.
	o := map[string]any{"query": q.Query, "maxNewTokens": q.MaxNewTokens}
	if q.Template != "" {
		o["template"] = q.Template
	}
	opts, _ := json.Marshal(o)
	raw := eval[[]byte](tb, fmt.Sprintf(`(async () => {
		const { CogVLM } = await import('/cogvlm.js');
		const progress = [];
		const model = await CogVLM.load('/models/demo/manifest.json', { onProgress: (p) => progress.push(p) });
		const streamedIds = [];
		let streamedText = '';
		const out = await model.generate({ ...%s, onToken: (id, text) => { streamedIds.push(id); streamedText += text; } });
		await model.dispose();
		return { progress, streamedIds, streamedText, out };
	})()`, opts))
	var r apiResult
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("the API's result: %v\n%s", err, raw)
	}
	return r
}

// checkProgress checks the one progress shape: phases in order, bytes that only grow, a
// download that reports its rate, and a total equal to the package's files.
func checkProgress(t *testing.T, events []progressEvent, m *format.Manifest) {
	t.Helper()
	want := float64(m.Tokenizer.Size)
	for _, s := range m.Shards {
		want += float64(s.Size)
	}
	order := []string{"probe", "manifest", "download", "upload", "ready"}
	last, lastLoaded, sawRate := 0, 0.0, false
	for i, e := range events {
		at := slices.Index(order, e.Phase)
		if at < last || e.Text == "" {
			t.Fatalf("progress event %d %+v after phase %s: want phases in the order %v, each with a text", i, e, order[last], order)
		}
		last = at
		if e.Phase == "download" || e.Phase == "upload" || e.Phase == "ready" {
			if e.TotalBytes != want || e.LoadedBytes < lastLoaded || e.LoadedBytes > want {
				t.Fatalf("progress event %d %+v: want totalBytes %v and loadedBytes growing to it (last %v)", i, e, want, lastLoaded)
			}
			lastLoaded = e.LoadedBytes
		}
		sawRate = sawRate || (e.Phase == "download" && strings.Contains(e.Text, "/s") && strings.Contains(e.Text, "left"))
	}
	if len(events) == 0 || events[len(events)-1].Phase != "ready" || lastLoaded != want {
		t.Fatalf("progress ends with %+v, want phase ready with all %v bytes", events[len(events)-1], want)
	}
	if !sawRate {
		t.Errorf("no download progress says the rate and time left: %+v", events)
	}
}

// askUI types a question with q's settings, sends it with Enter and waits for the answer;
// during runs while it is being answered.
func askUI(tb *tab, q question, during func()) {
	tb.t.Helper()
	tb.do(
		chromedp.SetValue(chromedp.ID("max-tokens"), fmt.Sprint(q.MaxNewTokens)),
		chromedp.SetValue(chromedp.ID("temperature"), "0"), // greedy, as the reference
		chromedp.SetValue(chromedp.ID("template"), q.Template),
		chromedp.SendKeys(chromedp.ID("query"), q.Query),
		pressEnter(),
	)
	if s := eval[string](tb, `document.body.dataset.state`); s != "answering" {
		tb.t.Fatalf("after Enter the page is %s, want answering; page: %s", s, tb.describe())
	}
	if during != nil {
		during()
	}
	tb.waitState("ready", answerTimeout)
}

// pressEnter sends Enter as a key press only (no character), as a person's Enter reaches
// a page that handles it on keydown (chromedp's "\n" also types a line break).
func pressEnter() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

type answer struct {
	Status string `json:"status"`
	Text   string `json:"text"`
}

// lastAnswer is the last answer's status and text (without the "(stopped)" mark).
func lastAnswer(tb *tab) answer {
	tb.t.Helper()
	raw := eval[[]byte](tb, `(() => {
		const a = [...document.querySelectorAll('#conversation .answer')].pop();
		if (!a) return { status: 'none', text: '' };
		const text = [...a.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.nodeValue).join('');
		return { status: a.dataset.status, text };
	})()`)
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		tb.t.Fatal(err)
	}
	return a
}

// corruptStoredShard flips one byte of the stored copy of shard i (same size, wrong hash)
// and returns its file name.
func corruptStoredShard(i int) string {
	return fmt.Sprintf(`(async () => {
		const manifestURL = new URL('/models/demo/manifest.json', location.href).href;
		const cache = await caches.open('cogvlm-package:' + manifestURL);
		const m = JSON.parse(await (await cache.match(manifestURL)).text());
		const url = new URL(m.shards[%d].file, manifestURL).href + '?sha256=' + m.shards[%[1]d].sha256;
		const bytes = new Uint8Array(await (await cache.match(url)).arrayBuffer());
		bytes[bytes.length >> 1] ^= 0xff;
		await cache.put(url, new Response(bytes));
		return m.shards[%[1]d].file;
	})()`, i)
}

// storedFiles lists the demo's stored files (store.js keys them by name and SHA-256).
const storedFiles = `(async () => {
	const manifestURL = new URL('/models/demo/manifest.json', location.href).href;
	const cache = await caches.open('cogvlm-package:' + manifestURL);
	return (await cache.keys()).map((r) => r.url.split('/').pop().split('?')[0]).sort();
})()`

// checkStoredShards hashes every stored shard and lists those that differ from the manifest.
const checkStoredShards = `(async () => {
	const manifestURL = new URL('/models/demo/manifest.json', location.href).href;
	const cache = await caches.open('cogvlm-package:' + manifestURL);
	const m = JSON.parse(await (await cache.match(manifestURL)).text());
	const bad = [];
	for (const s of m.shards) {
		const res = await cache.match(new URL(s.file, manifestURL).href + '?sha256=' + s.sha256);
		if (!res) { bad.push(s.file + ' missing'); continue; }
		const sum = [...new Uint8Array(await crypto.subtle.digest('SHA-256', await res.arrayBuffer()))].map((b) => b.toString(16).padStart(2, '0')).join('');
		if (sum !== s.sha256) bad.push(s.file);
	}
	return bad;
})()`

// shardsRequested picks the shard files out of request URLs, in order.
func shardsRequested(urls []string) []string {
	var files []string
	for _, u := range urls {
		if name := u[strings.LastIndexByte(u, '/')+1:]; strings.HasPrefix(name, "shard-") {
			files = append(files, name)
		}
	}
	slices.Sort(files)
	return files
}

func readManifest(t *testing.T, dir string) *format.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := format.ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// writeLargePhoto writes a 3000×2000 JPEG: larger than the page passes to the engine
// as it is, so the worker downscales and re-encodes it.
func writeLargePhoto(t *testing.T, dir string) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 3000, 2000))
	for y := 0; y < 2000; y++ {
		for x := 0; x < 3000; x++ {
			img.Set(x, y, color.RGBA{uint8(x / 12), uint8(y / 8), uint8((x + y) / 20), 255})
		}
	}
	path := filepath.Join(dir, "large-photo.jpg")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := jpeg.Encode(out, img, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return path
}

func abs(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitUntil polls a Go condition.
func waitUntil(t *testing.T, what string, cond func() bool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
