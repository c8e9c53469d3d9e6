package e2e

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/cogvlm-web/cogvlm-web/internal/rehearsal"
)

// standInHub is a local Hugging Face hub on two origins, as the real one is: the hub
// answers /{owner}/{name}/resolve/main/{file} itself for small files and with a 302 to its
// file host for *.safetensors, and the file host serves byte ranges. Both answer CORS as
// the hub does (any origin; Content-Range and ETag exposed). It can break: a file that is
// not there (404), ranges answered short, a file that changes after some reads, a delay.
type standInHub struct {
	hub, files *httptest.Server
	repos      map[string]string // owner/name → folder

	mu        sync.Mutex
	missing   map[string]bool // owner/name/file → 404
	truncate  map[string]bool // owner/name/file → tensor ranges answered with half their bytes
	changeAt  map[string]int  // owner/name/file → its version changes after this many ranges
	version   map[string]int
	ranges    map[string]int // owner/name/file → ranges served
	dataBytes int64          // tensor bytes served (past the headers)
	delay     time.Duration  // before each range answer
}

func newStandInHub(t *testing.T, repos map[string]string) *standInHub {
	h := &standInHub{repos: repos, missing: map[string]bool{}, truncate: map[string]bool{}, changeAt: map[string]int{}, version: map[string]int{}, ranges: map[string]int{}}
	h.files = httptest.NewServer(http.HandlerFunc(h.serveFile))
	h.hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	t.Cleanup(h.hub.Close)
	t.Cleanup(h.files.Close)
	return h
}

func cors(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Expose-Headers", "Content-Range, ETag, Content-Length, Accept-Ranges")
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Headers", "Range")
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// locate maps /{owner}/{name}/… to the file on disk and its key owner/name/file.
func (h *standInHub) locate(p string) (file, key string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(parts) < 3 {
		return "", "", false
	}
	dir, found := h.repos[parts[0]+"/"+parts[1]]
	name := parts[len(parts)-1]
	key = parts[0] + "/" + parts[1] + "/" + name
	h.mu.Lock()
	missing := h.missing[key]
	h.mu.Unlock()
	if !found || missing {
		return "", "", false
	}
	file = filepath.Join(dir, name)
	if _, err := os.Stat(file); err != nil {
		return "", "", false
	}
	return file, key, true
}

func (h *standInHub) serveHub(w http.ResponseWriter, r *http.Request) {
	if cors(w, r) {
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	file, key, ok := h.locate(r.URL.Path)
	if !ok || len(parts) != 5 || parts[2] != "resolve" || parts[3] != "main" {
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	if strings.HasSuffix(file, ".safetensors") {
		http.Redirect(w, r, h.files.URL+"/blobs/"+key, http.StatusFound)
		return
	}
	http.ServeFile(w, r, file)
}

func (h *standInHub) serveFile(w http.ResponseWriter, r *http.Request) {
	if cors(w, r) {
		return
	}
	file, key, ok := h.locate(strings.TrimPrefix(r.URL.Path, "/blobs"))
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	fd, err := os.Open(file)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer fd.Close()
	fi, err := fd.Stat()
	var head [8]byte
	if err == nil {
		_, err = fd.ReadAt(head[:], 0)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	size := fi.Size()
	headerEnd := 8 + int64(binary.LittleEndian.Uint64(head[:]))
	var start, end int64 = 0, size - 1
	if rg := r.Header.Get("Range"); rg != "" {
		a, b, _ := strings.Cut(strings.TrimPrefix(rg, "bytes="), "-")
		start, _ = strconv.ParseInt(a, 10, 64)
		end, _ = strconv.ParseInt(b, 10, 64)
	}
	h.mu.Lock()
	h.ranges[key]++
	if at, ok := h.changeAt[key]; ok && h.ranges[key] > at {
		h.version[key] = 1
	}
	version, short, delay := h.version[key], h.truncate[key] && start >= headerEnd, h.delay
	if start >= headerEnd {
		h.dataBytes += end - start + 1
	}
	h.mu.Unlock()
	time.Sleep(delay)
	w.Header().Set("ETag", fmt.Sprintf(`"%s-v%d"`, path.Base(key), version))
	w.Header().Set("Accept-Ranges", "bytes")
	if r.Header.Get("Range") == "" {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		io.Copy(w, fd)
		return
	}
	if end >= size || start > end {
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return
	}
	n := end - start + 1
	if short {
		n /= 2
	}
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(http.StatusPartialContent)
	io.Copy(w, io.NewSectionReader(fd, start, n))
}

func (h *standInHub) set(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
}

// convertResult is what jsConvert's script returns.
type convertResult struct {
	OK            bool     `json:"ok"`
	Code          string   `json:"code"`
	Message       string   `json:"message"`
	ManifestURL   string   `json:"manifestURL"`
	ResumedShards int      `json:"resumedShards"`
	WasmMemory    int64    `json:"wasmMemoryBytes"`
	Phases        []string `json:"phases"`
	Stored        bool     `json:"stored"` // a cache of that name exists afterwards
	Milliseconds  float64  `json:"ms"`
}

// convertScript starts a conversion in the page with convert.js (CogVLM.convert's
// implementation, which also reports resumed shards and the WASM heap) into
// window.conversion, a promise of a convertResult.
func convertScript(hub, repo, name string) string {
	return fmt.Sprintf(`(() => {
		window.conversion = (async () => {
			const { convertCheckpoint } = await import('/convert.js');
			const phases = [];
			const t0 = performance.now();
			const url = new URL('/converted/' + %[3]q + '/manifest.json', location.origin).href;
			let r;
			try {
				const out = await convertCheckpoint({ hub: %[1]q, repo: %[2]q, name: %[3]q, shardBytes: %[4]d, chunkBytes: 16384, workers: 2,
					onProgress: (p) => { if (phases.at(-1) !== p.phase) phases.push(p.phase); window.lastProgress = p; } });
				r = { ok: true, ...out };
			} catch (e) {
				r = { ok: false, code: e.code, message: e.message };
			}
			r.ms = performance.now() - t0;
			r.phases = phases;
			r.stored = await caches.has('cogvlm-package:' + url);
			return r;
		})();
		return true;
	})()`, hub, repo, name, demoShardBytes)
}

func jsConvert(tb *tab, hub, repo, name string) convertResult {
	tb.t.Helper()
	eval[bool](tb, convertScript(hub, repo, name))
	return jsConvertWait(tb)
}

// jsConvertWait waits for the conversion convertScript started.
func jsConvertWait(tb *tab) convertResult {
	tb.t.Helper()
	raw := eval[[]byte](tb, `window.conversion`)
	var r convertResult
	if err := json.Unmarshal(raw, &r); err != nil {
		tb.t.Fatalf("convert: %v\n%s", err, raw)
	}
	return r
}

// TestConvertInPage: the page converts a checkpoint from a (stand-in) hub into browser
// storage, byte for byte the CLI's package, which then answers as the CPU reference;
// contacting only the hub's two hosts. A conversion interrupted by a reload resumes
// without converting its finished shards again; a missing file, a truncated range and a
// file that changes mid-way each fail with a clear message and leave no model.
func TestConvertInPage(t *testing.T) {
	f := getFixture(t)
	// The demo checkpoint as THUDM publishes theirs: no tokenizer in the repository; the
	// tokenizer.model comes from Vicuna's (demo-hf's tokenizer.json is the one converted
	// from it, which the CLI copied).
	repo := t.TempDir()
	entries, err := os.ReadDir(filepath.Join(f.tmp, "demo-hf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "tokenizer") {
			rehearsal.CopyFile(filepath.Join(f.tmp, "demo-hf", e.Name()), filepath.Join(repo, e.Name()))
		}
	}
	vicuna := t.TempDir()
	rehearsal.CopyFile(filepath.Join(f.tmp, "demo-hf", "tokenizer.model"), filepath.Join(vicuna, "tokenizer.model"))
	const name = "THUDM/cogvlm-demo-hf"
	hub := newStandInHub(t, map[string]string{name: repo, "lmsys/vicuna-7b-v1.5": vicuna})
	var shards []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".safetensors") {
			shards = append(shards, e.Name())
		}
	}
	if len(shards) == 0 {
		t.Fatal("demo-hf has no safetensors files")
	}

	srv := f.startServerOf(t, f.models, "--hub", hub.hub.URL+","+hub.files.URL)
	bctx := startBrowser(t)
	rec, tb := recordNetwork(t, bctx), openTab(t, bctx)
	tb.do(chromedp.Navigate(srv.URL + "e2e/unit.html"))
	start := rec.mark()

	t.Log("== a file the repository lacks (404)")
	hub.set(func() { hub.missing[name+"/"+shards[0]] = true })
	r := jsConvert(tb, hub.hub.URL, name, "missing")
	if r.OK || r.Code != "bad-input" || !strings.Contains(r.Message, shards[0]) || !strings.Contains(r.Message, "does not exist") || r.Stored {
		t.Errorf("a missing shard: %+v, want bad-input naming %s, nothing stored", r, shards[0])
	}
	r = jsConvert(tb, hub.hub.URL, "THUDM/no-such-repo", "nothing")
	if r.OK || !strings.Contains(r.Message, "no-such-repo/config.json") || r.Stored {
		t.Errorf("a missing repository: %+v, want an error naming its config.json, nothing stored", r)
	}
	hub.set(func() { delete(hub.missing, name+"/"+shards[0]) })

	t.Log("== a truncated range")
	hub.set(func() { hub.truncate[name+"/"+shards[len(shards)-1]] = true })
	r = jsConvert(tb, hub.hub.URL, name, "truncated")
	if r.OK || r.Code != "integrity" || !strings.Contains(r.Message, "truncated") || !strings.Contains(r.Message, shards[len(shards)-1]) {
		t.Errorf("a truncated range: %+v, want integrity saying truncated, naming %s", r, shards[len(shards)-1])
	}
	notLoadable(t, tb, "truncated")
	hub.set(func() { delete(hub.truncate, name+"/"+shards[len(shards)-1]) })
	eval[bool](tb, `import('/cogvlm.js').then(({ deleteStoredPackage }) => deleteStoredPackage('/converted/truncated/manifest.json'))`)

	t.Log("== a file that changes mid-way")
	hub.set(func() { hub.changeAt[name+"/"+shards[0]] = hub.ranges[name+"/"+shards[0]] + 6 })
	r = jsConvert(tb, hub.hub.URL, name, "changed")
	if r.OK || r.Code != "integrity" || !strings.Contains(r.Message, "changed while it was being read") || r.Stored {
		t.Errorf("a changed file: %+v, want integrity saying it changed, nothing stored", r)
	}
	hub.set(func() { delete(hub.changeAt, name+"/"+shards[0]); hub.version = map[string]int{} })

	t.Log("== a GPU whose buffers are too small: refused before any weight is read")
	hub.set(func() { hub.dataBytes = 0 })
	limits := eval[[]string](tb, fmt.Sprintf(`import('/convert.js').then(({ convertCheckpoint }) =>
		convertCheckpoint({ hub: %q, repo: %q, name: 'small-gpu', shardBytes: %d, adapter: { maxStorageBufferBindingSize: 65536, maxBufferSize: 1 << 30 } })
		.then(() => ['ok', ''], (e) => [e.code, e.message]))
		.then(async (r) => [...r, String(await caches.has('cogvlm-package:' + location.origin + '/converted/small-gpu/manifest.json'))])`, hub.hub.URL, name, demoShardBytes))
	if limits[0] != "limits" || !strings.Contains(limits[1], "maxStorageBufferBindingSize") || limits[2] != "false" || hub.dataBytes != 0 {
		t.Errorf("a small GPU: %q, %d tensor bytes read; want limits naming maxStorageBufferBindingSize, nothing read or stored", limits, hub.dataBytes)
	}

	t.Log("== cancelled midway: what was written is freed")
	hub.set(func() { hub.delay = 40 * time.Millisecond })
	cancelled := eval[[]string](tb, fmt.Sprintf(`(async () => {
		const { convertCheckpoint } = await import('/convert.js');
		const url = location.origin + '/converted/cancelled/manifest.json';
		const stop = new AbortController();
		const done = convertCheckpoint({ hub: %q, repo: %q, name: 'cancelled', shardBytes: %d, signal: stop.signal, workers: 2 })
			.then(() => ['ok', ''], (e) => [e.code, e.message]);
		for (;;) {
			const r = await (await caches.open('cogvlm-package:' + url)).match(url + '?converting');
			if (r && Object.keys((await r.json()).shards).length > 0) break;
			await new Promise((resolve) => setTimeout(resolve, 50));
		}
		stop.abort();
		return [...(await done), String(await caches.has('cogvlm-package:' + url))];
	})()`, hub.hub.URL, name, demoShardBytes))
	if cancelled[0] != "aborted" || cancelled[2] != "false" {
		t.Errorf("cancelled: %q, want aborted and nothing stored", cancelled)
	}

	t.Log("== converting, interrupted by a reload")
	hub.set(func() { hub.delay = 40 * time.Millisecond })
	eval[bool](tb, convertScript(hub.hub.URL, name, "demo-converted"))
	m := readManifest(t, f.demo)
	half := max(1, len(m.Shards)/2)
	for deadline := time.Now().Add(3 * time.Minute); !eval[bool](tb, fmt.Sprintf(`caches.open('cogvlm-package:' + location.origin + '/converted/demo-converted/manifest.json')
		.then((c) => c.match(location.origin + '/converted/demo-converted/manifest.json?converting'))
		.then((r) => r ? r.json() : {}).then((j) => Object.keys(j.shards ?? {}).length >= %d)`, half)); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not %d shards converted in 3 minutes: %s", half, tb.describe())
		}
	}
	tb.do(chromedp.Navigate(srv.URL + "e2e/unit.html"))
	hub.set(func() { hub.delay = 0; hub.dataBytes = 0 })

	t.Log("== resumed")
	r = jsConvert(tb, hub.hub.URL, name, "demo-converted")
	if !r.OK {
		t.Fatalf("convert: %s: %s", r.Code, r.Message)
	}
	var total int64
	for _, s := range shards {
		fi, _ := os.Stat(filepath.Join(repo, s))
		total += fi.Size()
	}
	t.Logf("converted in %.0f ms after resuming %d shards; %d tensor bytes read again of about %d; WASM heap %d bytes; phases %v",
		r.Milliseconds, r.ResumedShards, hub.dataBytes, total, r.WasmMemory, r.Phases)
	if r.ResumedShards < half || hub.dataBytes >= total {
		t.Errorf("the resumed conversion skipped %d shards and read %d tensor bytes of %d: want the finished shards skipped", r.ResumedShards, hub.dataBytes, total)
	}
	if !slices.Equal(r.Phases, []string{"plan", "convert", "manifest", "ready"}) {
		t.Errorf("phases %v", r.Phases)
	}

	t.Log("== the CLI's package, byte for byte")
	manifestURL := "/converted/demo-converted/manifest.json"
	stored := eval[string](tb, fmt.Sprintf(`caches.open('cogvlm-package:' + new URL(%[1]q, location.origin).href)
		.then((c) => c.match(new URL(%[1]q, location.origin).href)).then((r) => r.text())`, manifestURL))
	want, err := os.ReadFile(filepath.Join(f.demo, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if stored != string(want) {
		t.Errorf("the stored manifest differs from the CLI's (%d bytes, the CLI's %d)", len(stored), len(want))
	}
	keys := eval[[]string](tb, fmt.Sprintf(`(async () => {
		const url = new URL(%q, location.origin).href;
		const cache = await caches.open('cogvlm-package:' + url);
		return (await cache.keys()).map((r) => r.url.slice(url.length - 'manifest.json'.length)).sort();
	})()`, manifestURL))
	wantKeys := []string{"manifest.json"}
	for _, e := range append(slices.Clone(m.Shards), m.Tokenizer) {
		wantKeys = append(wantKeys, e.File+"?sha256="+e.SHA256)
	}
	slices.Sort(wantKeys)
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("stored %v, want the CLI's files and hashes %v", keys, wantKeys)
	}

	t.Log("== it answers as the CPU reference, offline")
	q := question{Query: "What is in this picture?", Template: "chat", MaxNewTokens: 3}
	ref := f.reference(t, q)
	mark := rec.mark()
	jsLoad(tb, manifestURL, q).want(t, "storage", m, ref)
	for _, u := range rec.since(mark) {
		if !strings.HasPrefix(u, srv.URL) || strings.Contains(u, "/converted/") {
			t.Errorf("loading the converted model requested %s", u)
		}
	}

	t.Log("== the page's \"Get a model\": it names the hub's host first, then converts")
	tb.do(chromedp.Navigate(srv.URL))
	tb.waitState("idle", time.Minute)
	tb.waitFor("the Get a model section", `!document.getElementById('get-model').hidden`, time.Minute)
	hubHost := strings.TrimPrefix(hub.hub.URL, "http://")
	if p := tb.text("convert-privacy"); !strings.Contains(p, hubHost) || !strings.Contains(p, "only after you press Convert") {
		t.Errorf("the section says %q, want the hub's host %s and that nothing is fetched before Convert", p, hubHost)
	}
	tb.do(chromedp.Click(chromedp.CSS("#get-model summary")),
		chromedp.SetValue(chromedp.ID("convert-repo"), ""),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('convert-repo').dispatchEvent(new Event('change'))`),
		chromedp.SendKeys(chromedp.ID("convert-other"), name),
		chromedp.Click(chromedp.ID("convert-start")))
	tb.waitFor("the page's conversion", `document.getElementById('convert-status').textContent.includes('converted and stored')`, 3*time.Minute)
	if got, want := eval[string](tb, `document.getElementById('model-select').value`), srv.URL+"converted/cogvlm-demo-hf/manifest.json"; got != want {
		t.Errorf("after converting, the list selects %s, want %s", got, want)
	}
	tb.screenshot("converted")

	// Privacy: the page asked nothing of any host but its own and the hub's two.
	for _, u := range rec.since(start) {
		if !strings.HasPrefix(u, srv.URL) && !strings.HasPrefix(u, hub.hub.URL+"/") && !strings.HasPrefix(u, hub.files.URL+"/") {
			t.Errorf("requested %s, outside the page's origin and the hub's", u)
		}
	}
	for _, x := range tb.exceptions {
		t.Errorf("uncaught exception: %s", x)
	}
}

// notLoadable checks that a failed conversion left nothing CogVLM.load takes.
func notLoadable(t *testing.T, tb *tab, name string) {
	t.Helper()
	if r := jsLoad(tb, "/converted/"+name+"/manifest.json", question{}); r.OK {
		t.Errorf("%s: a failed conversion left a loadable model", name)
	}
}
