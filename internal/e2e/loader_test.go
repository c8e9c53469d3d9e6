package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/cogvlm-web/cogvlm-web/internal/rehearsal"
	"github.com/cogvlm-web/cogvlm-web/model/format"
	modelpkg "github.com/cogvlm-web/cogvlm-web/model/pkg"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// TestStoredCopyUpdates: the stored copy of a package is replaced only by a complete,
// verified one. A captive portal's 200 falls back to it; an update interrupted halfway
// leaves it whole and usable offline (the new version's shards have the same names and
// other bytes); the update then resumes and, once complete, becomes the stored copy.
func TestStoredCopyUpdates(t *testing.T) {
	f := getFixture(t)
	models := t.TempDir()
	demo := filepath.Join(models, "demo")
	copyFlat(t, f.demo, demo)
	v2 := filepath.Join(t.TempDir(), "demo-v2")
	if err := modelpkg.Convert(filepath.Join(f.tmp, "demo-hf"), v2, modelpkg.ConvertOptions{Quant: quant.Q8, ShardBytes: demoShardBytes}); err != nil {
		t.Fatal(err)
	}
	m1, m2 := readManifest(t, f.demo), readManifest(t, v2)
	if len(m2.Shards) < 5 || m2.Shards[3].File != m1.Shards[3].File || m2.Shards[3].SHA256 == m1.Shards[3].SHA256 {
		t.Fatalf("version 2 should have at least 5 shards, shard 3 named as version 1's with other bytes")
	}
	srv, rec, tb := f.session(t, models)
	tb.do(chromedp.Navigate(srv.URL + "e2e/unit.html"))
	const manifestPath = "/models/demo/manifest.json"
	q := question{Query: "What is in this picture?", Template: "chat", MaxNewTokens: 3}
	ref := f.reference(t, q)

	t.Log("== version 1, downloaded and stored")
	r := jsLoad(tb, manifestPath, q)
	r.want(t, "network", m1, ref)

	t.Log("== a captive portal answers 200 with its own page: the stored copy is used")
	for _, portal := range []struct{ contentType, body string }{
		{"text/html", "<!doctype html><title>Sign in to the Wi-Fi</title><form>…</form>"},
		{"application/json", `{"status":"login required"}`},
	} {
		rec.respond(manifestPath, 200, portal.contentType, []byte(portal.body))
		mark := rec.mark()
		r = jsLoad(tb, manifestPath, q)
		rec.release(manifestPath)
		r.want(t, "storage", m1, ref)
		if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "not a usable manifest") }) {
			t.Errorf("%s portal: notes %q do not say why the stored copy is used", portal.contentType, r.Notes)
		}
		if got := shardsRequested(rec.since(mark)); len(got) > 0 {
			t.Errorf("%s portal: downloaded %v", portal.contentType, got)
		}
	}

	t.Log("== an update to version 2 breaks off at shard 3")
	os.RemoveAll(demo)
	copyFlat(t, v2, demo)
	rec.fail("/models/demo/" + m2.Shards[3].File)
	r = jsLoad(tb, manifestPath, question{})
	if r.OK || r.Code != "network" || !strings.Contains(r.Message, m2.Shards[3].File) {
		t.Fatalf("the broken update: %+v, want a network error naming %s", r, m2.Shards[3].File)
	}

	t.Log("== offline: version 1 is still whole and answers")
	rec.fail(manifestPath)
	r = jsLoad(tb, manifestPath, q)
	r.want(t, "storage", m1, ref)

	t.Log("== online, pinned to version 1's manifest: the server's version 2 is not used")
	rec.release(manifestPath)
	mark := rec.mark()
	r = jsLoad(tb, manifestPath+"#sha256="+fileSHA256(t, filepath.Join(f.demo, "manifest.json")), q)
	r.want(t, "storage", m1, ref)
	if got := shardsRequested(rec.since(mark)); len(got) > 0 {
		t.Errorf("pinned to version 1, the load downloaded %v", got)
	}

	t.Log("== the update resumes: only the shards it lacks are downloaded, then it is the stored copy")
	rec.release("/models/demo/" + m2.Shards[3].File)
	mark = rec.mark()
	r = jsLoad(tb, manifestPath, question{})
	r.want(t, "network", m2, reference{})
	got := shardsRequested(rec.since(mark))
	if !slices.Contains(got, m2.Shards[3].File) || len(got) >= len(m2.Shards) {
		t.Errorf("the resumed update downloaded %v, want shard 3 and not all %d shards", got, len(m2.Shards))
	}
	want := []string{"manifest.json"}
	for _, e := range append([]format.FileEntry{m2.Tokenizer}, m2.Shards...) {
		want = append(want, e.File+"?sha256="+e.SHA256)
	}
	slices.Sort(want)
	if keys := eval[[]string](tb, storedKeys); !slices.Equal(keys, want) {
		t.Errorf("stored after the update: %v, want version 2's files only: %v", keys, want)
	}
	rec.fail(manifestPath)
	r = jsLoad(tb, manifestPath, question{})
	r.want(t, "storage", m2, reference{})
	for _, x := range tb.exceptions {
		t.Errorf("uncaught exception: %s", x)
	}
}

// TestHostileManifests: a manifest whose file names would leave the package folder (or
// name one file twice) is refused, naming the entry, before anything else is requested.
func TestHostileManifests(t *testing.T) {
	f := getFixture(t)
	srv, rec, tb := f.session(t, f.models)
	origin := strings.TrimSuffix(srv.URL, "/")
	tb.do(chromedp.Navigate(srv.URL + "e2e/unit.html"))
	const manifestPath = "/models/evil/manifest.json"
	for _, tc := range []struct {
		name string
		edit func(m *format.Manifest)
		want string
	}{
		{"backslashes up to the app", func(m *format.Manifest) { m.Tokenizer.File = `a\..\..\index.html` }, `tokenizer.file "a\\..\\..\\index.html" is not a plain file name`},
		{"escaped dots", func(m *format.Manifest) { m.Tokenizer.File = "%2e%2e" }, `tokenizer.file "%2e%2e"`},
		{"another host", func(m *format.Manifest) { m.Shards[0].File = `https:\\example.com\x` }, `shards[0].file "https:\\\\example.com\\x"`},
		{"a UNC path", func(m *format.Manifest) { m.Shards[1].File = `\\example.com\shard` }, `shards[1].file`},
		{"a fragment", func(m *format.Manifest) { m.Tokenizer.File = "#x" }, `tokenizer.file "#x"`},
		{"the manifest itself", func(m *format.Manifest) { m.Shards[2].File = "manifest.json" }, "is the name of the manifest itself"},
		{"the folder itself", func(m *format.Manifest) { m.Shards[0].File = "." }, `shards[0].file "." is not a plain file name inside the package: it starts with a dot`},
		{"a shard twice", func(m *format.Manifest) { m.Shards[1].File = m.Shards[0].File }, "is also shards[0]"},
		{"a huge tokenizer", func(m *format.Manifest) { m.Tokenizer.Size = 1 << 50 }, "tokenizer.size is 1125899906842624, more than"},
	} {
		m := readManifest(t, f.demo)
		tc.edit(m)
		body, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		rec.respond(manifestPath, 200, "application/json", body)
		mark := rec.mark()
		r := jsLoad(tb, manifestPath, question{})
		if r.OK || r.Code != "bad-input" || !strings.Contains(r.Message, tc.want) {
			t.Errorf("%s: %+v, want bad-input saying %q", tc.name, r, tc.want)
		}
		for _, u := range rec.since(mark) {
			if !strings.HasPrefix(u, origin+"/") || strings.Contains(u, "/models/") && !strings.HasSuffix(u, manifestPath) {
				t.Errorf("%s: requested %s", tc.name, u)
			}
		}
	}
	for _, x := range tb.exceptions {
		t.Errorf("uncaught exception: %s", x)
	}
}

// loadResult is what jsLoad's script returns.
type loadResult struct {
	OK        bool     `json:"ok"`
	Code      string   `json:"code"`
	Message   string   `json:"message"`
	Source    string   `json:"source"`
	Stored    bool     `json:"stored"`
	Encodings []string `json:"encodings"`
	Notes     []string `json:"notes"`
	TokenIDs  []int    `json:"tokenIds"`
}

// jsLoad loads manifest with the JS API, as a page embedding the model would, and asks q
// (greedy) when it has a query.
func jsLoad(tb *tab, manifest string, q question) loadResult {
	tb.t.Helper()
	opts, _ := json.Marshal(map[string]any{"query": q.Query, "template": q.Template, "maxNewTokens": q.MaxNewTokens, "temperature": 0})
	raw := eval[[]byte](tb, fmt.Sprintf(`(async () => {
		const { CogVLM } = await import('/cogvlm.js');
		const opts = %s;
		let model;
		try {
			model = await CogVLM.load(%q);
			const { source, stored, encodings, notes } = model.info;
			const tokenIds = opts.query ? (await model.generate(opts)).tokenIds : [];
			return { ok: true, source, stored, encodings, notes, tokenIds };
		} catch (e) {
			return { ok: false, code: e.code, message: e.message };
		} finally {
			await model?.dispose();
		}
	})()`, opts, manifest))
	var r loadResult
	if err := json.Unmarshal(raw, &r); err != nil {
		tb.t.Fatalf("load %s: %v\n%s", manifest, err, raw)
	}
	return r
}

// want checks a load from source of the package m, stored in the browser, answering as
// the CPU reference (when ref has tokens).
func (r loadResult) want(t *testing.T, source string, m *format.Manifest, ref reference) {
	t.Helper()
	var encodings []string
	for _, e := range m.Tensors {
		if !slices.Contains(encodings, string(e.Encoding)) {
			encodings = append(encodings, string(e.Encoding))
		}
	}
	slices.Sort(encodings)
	switch {
	case !r.OK:
		t.Fatalf("load failed: %s: %s", r.Code, r.Message)
	case r.Source != source || !r.Stored:
		t.Errorf("loaded from %s (stored %v), want %s and stored; notes %q", r.Source, r.Stored, source, r.Notes)
	case !slices.Equal(r.Encodings, encodings):
		t.Errorf("loaded a package of encodings %v, want %v (the other version)", r.Encodings, encodings)
	case len(ref.GeneratedIDs) > 0 && !slices.Equal(r.TokenIDs, ref.GeneratedIDs):
		t.Errorf("answered %v, the CPU reference %v", r.TokenIDs, ref.GeneratedIDs)
	}
}

// storedKeys lists the demo's stored entries, relative to its folder.
const storedKeys = `(async () => {
	const manifestURL = new URL('/models/demo/manifest.json', location.href).href;
	const cache = await caches.open('cogvlm-package:' + manifestURL);
	const dir = manifestURL.slice(0, -'manifest.json'.length);
	return (await cache.keys()).map((r) => r.url.slice(dir.length)).sort();
})()`

// copyFlat copies the files of a package folder.
func copyFlat(t *testing.T, from, to string) {
	t.Helper()
	if err := rehearsal.CopyApp(from, to); err != nil {
		t.Fatal(err)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
