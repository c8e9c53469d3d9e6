package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func TestIndexListsPackages(t *testing.T) {
	f := newFixture(t)
	// demo: manifest + shard + sub/extra.bin + link-inside.bin (a symlink to extra.bin,
	// served, so counted). Not counted: .partial (dotfile) and link-outside (escapes).
	demoBytes := len(demoManifest) + len(shard) + 10 + 10
	// alias -> demo is a package too; escape, .hidden, nomanifest and manifest-dir are not.
	want := fmt.Sprintf(`{"models":[`+
		`{"name":"alias","manifest":"/models/alias/manifest.json","bytes":%d},`+
		`{"name":"demo","manifest":"/models/demo/manifest.json","bytes":%d},`+
		`{"name":"with space","manifest":"/models/with%%20space/manifest.json","bytes":2}]}`+"\n",
		demoBytes, demoBytes)
	w := do(f.h, "GET", "/models/index.json")
	if w.Code != http.StatusOK || w.Body.String() != want {
		t.Fatalf("GET /models/index.json: status %d\n got %s\nwant %s", w.Code, w.Body.String(), want)
	}
	// Each listed manifest is servable at the URL given.
	for _, u := range []string{"/models/alias/manifest.json", "/models/demo/manifest.json", "/models/with%20space/manifest.json"} {
		if w := do(f.h, "GET", u); w.Code != http.StatusOK {
			t.Errorf("GET %s (listed in the index): status %d", u, w.Code)
		}
	}
}

func TestIndexWithoutModelsDir(t *testing.T) {
	web, models := t.TempDir(), filepath.Join(t.TempDir(), "models")
	h, err := newHandler(web, models)
	if err != nil {
		t.Fatal(err)
	}
	const empty = `{"models":[]}` + "\n"
	if w := do(h, "GET", "/models/index.json"); w.Code != 200 || w.Body.String() != empty {
		t.Fatalf("no models dir: status %d, body %q; want 200 %q", w.Code, w.Body.String(), empty)
	}
	if w := do(h, "GET", "/models/demo/manifest.json"); w.Code != 404 {
		t.Errorf("no models dir: GET a manifest: status %d, want 404", w.Code)
	}
	// A package converted while the server runs shows up without a restart.
	if err := os.MkdirAll(filepath.Join(models, "late"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(models, "late", "manifest.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	const late = `{"models":[{"name":"late","manifest":"/models/late/manifest.json","bytes":2}]}` + "\n"
	if w := do(h, "GET", "/models/index.json"); w.Body.String() != late {
		t.Errorf("after creating models/late: body %q, want %q", w.Body.String(), late)
	}
}

// The index is generated, but a client that has the current one still gets a 304, and a
// changed package list changes the ETag.
func TestIndexRevalidation(t *testing.T) {
	f := newFixture(t)
	etag := do(f.h, "GET", "/models/index.json").Header().Get("ETag")
	if etag == "" {
		t.Fatal("index.json has no ETag")
	}
	if w := do(f.h, "GET", "/models/index.json", "If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match current: status %d, want 304", w.Code)
	}
	if err := os.WriteFile(filepath.Join(f.models, "nomanifest", "manifest.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := do(f.h, "GET", "/models/index.json", "If-None-Match", etag)
	if w.Code != http.StatusOK || w.Header().Get("ETag") == etag {
		t.Fatalf("after adding a package: status %d, ETag %q (was %q); want 200 and a new ETag", w.Code, w.Header().Get("ETag"), etag)
	}
}
