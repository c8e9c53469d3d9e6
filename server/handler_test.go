package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secret is the content of every file outside the roots; no response may contain it.
const secret = "TOP SECRET"

// fixture is a temp tree with an app dir, a models dir and things outside both:
//
//	secret.txt  outside/{index.html,file.txt}  outside-pkg/manifest.json
//	web/  index.html app.js app.mjs UPPER.JS engine.wasm style.css icon.svg icon.png
//	      app.webmanifest data.json blob.bin noext sub/index.html emptydir/ .git/config .env
//	      inside-link.html -> index.html   linked-sub -> sub   dot-link -> .git/config
//	      outside-link -> ../secret.txt   outside-dir -> ../outside   abs-link -> /…/secret.txt
//	models/ demo/{manifest.json, shard-00000.bin (1000 B), sub/extra.bin (10 B), .partial,
//	              link-outside -> ../../secret.txt, link-inside.bin -> sub/extra.bin}
//	        alias -> demo   escape -> ../outside-pkg   .hidden/manifest.json
//	        nomanifest/shard.bin   manifest-dir/manifest.json/   "with space"/manifest.json
type fixture struct {
	root, web, models string
	h                 http.Handler
}

// shard is the content of models/demo/shard-00000.bin: every byte differs from its
// neighbours, so a wrong offset cannot go unnoticed.
var shard = func() []byte {
	b := make([]byte, 1000)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}()

const demoManifest = `{"format":"test"}`

func newFixture(t testing.TB) *fixture {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"secret.txt":                          secret,
		"outside/index.html":                  secret,
		"outside/file.txt":                    secret,
		"outside-pkg/manifest.json":           secret,
		"web/index.html":                      "<!doctype html>root index",
		"web/app.js":                          "export const app = 1;",
		"web/app.mjs":                         "export const mod = 1;",
		"web/UPPER.JS":                        "1;",
		"web/engine.wasm":                     "\x00asm\x01\x00\x00\x00",
		"web/style.css":                       "body{}",
		"web/icon.svg":                        "<svg/>",
		"web/icon.png":                        "\x89PNG",
		"web/app.webmanifest":                 "{}",
		"web/data.json":                       "{}",
		"web/blob.bin":                        "<html>sniff me</html>",
		"web/noext":                           "<html>sniff me</html>",
		"web/sub/index.html":                  "sub index",
		"web/.git/config":                     secret,
		"web/.env":                            secret,
		"models/demo/manifest.json":           demoManifest,
		"models/demo/shard-00000.bin":         string(shard),
		"models/demo/sub/extra.bin":           "0123456789",
		"models/demo/.partial":                "half-written shard",
		"models/.hidden/manifest.json":        "{}",
		"models/nomanifest/shard.bin":         "x",
		"models/with space/manifest.json":     "{}",
		"models/manifest-dir/manifest.json/x": "x",
	}
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "web/emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"web/inside-link.html":        "index.html",
		"web/linked-sub":              "sub",
		"web/dot-link":                ".git/config",
		"web/outside-link":            "../secret.txt",
		"web/outside-dir":             "../outside",
		"web/abs-link":                filepath.Join(root, "secret.txt"),
		"models/demo/link-outside":    "../../secret.txt",
		"models/demo/link-inside.bin": "sub/extra.bin",
		"models/alias":                "demo",
		"models/escape":               "../outside-pkg",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{root: root, web: filepath.Join(root, "web"), models: filepath.Join(root, "models")}
	h, err := newHandler(f.web, f.models)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

// do sends one request straight to the handler. header holds name, value pairs.
func do(h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestContentTypes(t *testing.T) {
	f := newFixture(t)
	tests := []struct{ target, want string }{
		{"/", "text/html; charset=utf-8"},
		{"/index.html", "text/html; charset=utf-8"},
		{"/app.js", "text/javascript; charset=utf-8"},
		{"/app.mjs", "text/javascript; charset=utf-8"},
		{"/UPPER.JS", "text/javascript; charset=utf-8"},
		{"/engine.wasm", "application/wasm"},
		{"/style.css", "text/css; charset=utf-8"},
		{"/icon.svg", "image/svg+xml"},
		{"/icon.png", "image/png"},
		{"/app.webmanifest", "application/manifest+json"},
		{"/data.json", "application/json"},
		{"/blob.bin", "application/octet-stream"}, // HTML inside, but never sniffed
		{"/noext", "application/octet-stream"},
		{"/models/index.json", "application/json"},
		{"/models/demo/manifest.json", "application/json"},
		{"/models/demo/shard-00000.bin", "application/octet-stream"},
	}
	for _, tt := range tests {
		w := do(f.h, "GET", tt.target)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", tt.target, w.Code)
			continue
		}
		if got := w.Header().Get("Content-Type"); got != tt.want {
			t.Errorf("GET %s: Content-Type %q, want %q", tt.target, got, tt.want)
		}
		if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", tt.target, got)
		}
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	f := newFixture(t)
	etag := do(f.h, "GET", "/app.js").Header().Get("ETag")
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; " +
			"connect-src 'self'; img-src 'self' blob: data:; style-src 'self'; object-src 'none'; " +
			"base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Embedder-Policy": "require-corp",
		"Cross-Origin-Resource-Policy": "same-origin",
		"Referrer-Policy":              "no-referrer",
		"X-Content-Type-Options":       "nosniff",
	}
	tests := []struct {
		method, target string
		header         []string
		status         int
	}{
		{"GET", "/", nil, 200},
		{"HEAD", "/app.js", nil, 200},
		{"GET", "/models/index.json", nil, 200},
		{"GET", "/models/demo/shard-00000.bin", []string{"Range", "bytes=0-9"}, 206},
		{"GET", "/app.js", []string{"If-None-Match", etag}, 304},
		{"GET", "/sub", nil, 301},
		{"GET", "/missing", nil, 404},
		{"GET", "/outside-link", nil, 404},
		{"POST", "/", nil, 405},
		{"GET", "/models/demo/shard-00000.bin", []string{"Range", "bytes=5000-"}, 416},
	}
	for _, tt := range tests {
		w := do(f.h, tt.method, tt.target, tt.header...)
		if w.Code != tt.status {
			t.Errorf("%s %s %q: status %d, want %d", tt.method, tt.target, tt.header, w.Code, tt.status)
		}
		for k, v := range want {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s %s %q (%d): %s = %q, want %q", tt.method, tt.target, tt.header, w.Code, k, got, v)
			}
		}
	}
}

func TestRanges(t *testing.T) {
	f := newFixture(t)
	const target = "/models/demo/shard-00000.bin"
	tests := []struct {
		rng          string
		status       int
		contentRange string
		body         []byte
	}{
		{"bytes=0-99", 206, "bytes 0-99/1000", shard[:100]},
		{"bytes=-100", 206, "bytes 900-999/1000", shard[900:]},
		{"bytes=100-", 206, "bytes 100-999/1000", shard[100:]},
		{"bytes=500-500", 206, "bytes 500-500/1000", shard[500:501]},
		{"bytes=990-5000", 206, "bytes 990-999/1000", shard[990:]},
		{"bytes=1000-", 416, "bytes */1000", nil},
		{"bytes=5000-6000", 416, "bytes */1000", nil},
		{"bytes=5-2", 416, "", nil},
		{"pages=0-1", 416, "", nil},
		{"", 200, "", shard},
	}
	for _, tt := range tests {
		var w *httptest.ResponseRecorder
		if tt.rng == "" {
			w = do(f.h, "GET", target)
		} else {
			w = do(f.h, "GET", target, "Range", tt.rng)
		}
		if w.Code != tt.status {
			t.Errorf("Range %q: status %d, want %d", tt.rng, w.Code, tt.status)
			continue
		}
		if got := w.Header().Get("Content-Range"); got != tt.contentRange {
			t.Errorf("Range %q: Content-Range %q, want %q", tt.rng, got, tt.contentRange)
		}
		if tt.body != nil && !bytes.Equal(w.Body.Bytes(), tt.body) {
			t.Errorf("Range %q: body is %d bytes starting %v, want %d bytes starting %v",
				tt.rng, w.Body.Len(), head(w.Body.Bytes()), len(tt.body), head(tt.body))
		}
		if tt.status != 416 {
			if got := w.Header().Get("Accept-Ranges"); got != "bytes" {
				t.Errorf("Range %q: Accept-Ranges %q, want bytes", tt.rng, got)
			}
		}
	}
	// Two ranges come back as one multipart body; the app asks for one at a time.
	w := do(f.h, "GET", target, "Range", "bytes=0-9,20-29")
	if ct := w.Header().Get("Content-Type"); w.Code != 206 || !strings.HasPrefix(ct, "multipart/byteranges") {
		t.Errorf("two ranges: status %d, Content-Type %q; want 206 multipart/byteranges", w.Code, ct)
	}
}

func head(b []byte) []byte { return b[:min(len(b), 4)] }

func TestConditionalRequests(t *testing.T) {
	f := newFixture(t)
	const target = "/models/demo/shard-00000.bin"
	first := do(f.h, "GET", target)
	etag, lastMod := first.Header().Get("ETag"), first.Header().Get("Last-Modified")
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 3 {
		t.Fatalf("ETag %q: want a strong (unprefixed, quoted) entity tag", etag)
	}
	mod, err := http.ParseTime(lastMod)
	if err != nil {
		t.Fatalf("Last-Modified %q: %v", lastMod, err)
	}
	earlier := mod.Add(-time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		name   string
		header []string
		status int
		body   []byte
	}{
		{"If-None-Match current", []string{"If-None-Match", etag}, 304, nil},
		{"If-None-Match in list", []string{"If-None-Match", `"x", ` + etag}, 304, nil},
		{"If-None-Match any", []string{"If-None-Match", "*"}, 304, nil},
		{"If-None-Match other", []string{"If-None-Match", `"other"`}, 200, shard},
		{"If-Modified-Since current", []string{"If-Modified-Since", lastMod}, 304, nil},
		{"If-Modified-Since earlier", []string{"If-Modified-Since", earlier}, 200, shard},
		{"If-Range current ETag", []string{"Range", "bytes=0-9", "If-Range", etag}, 206, shard[:10]},
		{"If-Range stale ETag", []string{"Range", "bytes=0-9", "If-Range", `"stale"`}, 200, shard},
		{"If-Range weak ETag", []string{"Range", "bytes=0-9", "If-Range", "W/" + etag}, 200, shard},
		{"If-Range current date", []string{"Range", "bytes=0-9", "If-Range", lastMod}, 206, shard[:10]},
		{"If-Range earlier date", []string{"Range", "bytes=0-9", "If-Range", earlier}, 200, shard},
	}
	for _, tt := range tests {
		w := do(f.h, "GET", target, tt.header...)
		if w.Code != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, w.Code, tt.status)
			continue
		}
		if tt.status == 304 {
			if w.Body.Len() != 0 || w.Header().Get("ETag") != etag {
				t.Errorf("%s: 304 with %d body bytes and ETag %q, want none and %q", tt.name, w.Body.Len(), w.Header().Get("ETag"), etag)
			}
			continue
		}
		if !bytes.Equal(w.Body.Bytes(), tt.body) {
			t.Errorf("%s: body is %d bytes, want %d", tt.name, w.Body.Len(), len(tt.body))
		}
	}
}

// A re-converted package rewrites shards in place: the old ETag must stop matching, whether
// the size changes or only the content and mtime do.
func TestETagChangesWhenFileIsRewritten(t *testing.T) {
	f := newFixture(t)
	const target = "/models/demo/shard-00000.bin"
	p := filepath.Join(f.models, "demo", "shard-00000.bin")
	old := do(f.h, "GET", target).Header().Get("ETag")

	sameSize := bytes.Repeat([]byte{7}, len(shard))
	if err := os.WriteFile(p, sameSize, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	w := do(f.h, "GET", target, "If-None-Match", old)
	if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), sameSize) {
		t.Fatalf("same size, new mtime: status %d, want 200 with the new content", w.Code)
	}
	mid := w.Header().Get("ETag")
	if mid == old {
		t.Fatalf("same size, new mtime: ETag still %q", old)
	}

	if err := os.WriteFile(p, shard[:10], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, later, later); err != nil { // same mtime, new size
		t.Fatal(err)
	}
	if w := do(f.h, "GET", target, "If-None-Match", mid); w.Code != 200 || w.Body.Len() != 10 {
		t.Fatalf("new size, same mtime: status %d with %d bytes, want 200 with 10", w.Code, w.Body.Len())
	}
}

func TestCacheControl(t *testing.T) {
	f := newFixture(t)
	tests := []struct{ target, want string }{
		{"/", "no-cache"},
		{"/app.js", "no-cache"},
		{"/engine.wasm", "no-cache"},
		{"/sub/", "no-cache"},
		{"/models/index.json", "no-cache"},
		{"/models/demo/manifest.json", "no-cache"},
		{"/models/alias/manifest.json", "no-cache"},
		{"/models/demo/shard-00000.bin", "max-age=3600"},
		{"/models/demo/sub/extra.bin", "max-age=3600"},
		{"/missing", "no-store"},
		{"/models/nope/manifest.json", "no-store"},
	}
	for _, tt := range tests {
		if got := do(f.h, "GET", tt.target).Header().Get("Cache-Control"); got != tt.want {
			t.Errorf("GET %s: Cache-Control %q, want %q", tt.target, got, tt.want)
		}
	}
}

func TestMethods(t *testing.T) {
	f := newFixture(t)
	for _, method := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"} {
		for _, target := range []string{"/", "/app.js", "/models/index.json", "/models/demo/manifest.json", "/missing"} {
			w := do(f.h, method, target)
			if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: status %d, Allow %q; want 405, \"GET, HEAD\"", method, target, w.Code, w.Header().Get("Allow"))
			}
		}
	}
	for _, target := range []string{"/app.js", "/models/index.json", "/models/demo/shard-00000.bin"} {
		get, hd := do(f.h, "GET", target), do(f.h, "HEAD", target)
		if hd.Code != 200 || hd.Body.Len() != 0 {
			t.Errorf("HEAD %s: status %d with %d body bytes, want 200 and none", target, hd.Code, hd.Body.Len())
		}
		if want := fmt.Sprint(get.Body.Len()); hd.Header().Get("Content-Length") != want {
			t.Errorf("HEAD %s: Content-Length %q, want %s", target, hd.Header().Get("Content-Length"), want)
		}
	}
}

func TestDirectoriesAndRoot(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		target   string
		status   int
		body     string // for 200
		location string // for 301
	}{
		{"/", 200, "<!doctype html>root index", ""},
		{"/index.html", 200, "<!doctype html>root index", ""},
		{"/sub/", 200, "sub index", ""},
		{"/sub", 301, "", "/sub/"},
		{"/sub?x=1", 301, "", "/sub/?x=1"},
		{"/linked-sub/", 200, "sub index", ""},                      // symlink inside the root
		{"/inside-link.html", 200, "<!doctype html>root index", ""}, // symlink inside the root
		{"/emptydir/", 404, "", ""},
		{"/emptydir", 404, "", ""},
		{"/index.html/", 404, "", ""},
		{"//", 404, "", ""},
		{"/sub//", 404, "", ""},
		{"/models", 404, "", ""},
		{"/models/", 404, "", ""},
		{"/models/demo/", 404, "", ""},
		{"/models/demo", 404, "", ""},
		{"/models/index.json/", 404, "", ""},
	}
	for _, tt := range tests {
		w := do(f.h, "GET", tt.target)
		if w.Code != tt.status {
			t.Errorf("GET %s: status %d, want %d", tt.target, w.Code, tt.status)
			continue
		}
		if tt.status == 200 && w.Body.String() != tt.body {
			t.Errorf("GET %s: body %q, want %q", tt.target, w.Body.String(), tt.body)
		}
		if got := w.Header().Get("Location"); got != tt.location {
			t.Errorf("GET %s: Location %q, want %q", tt.target, got, tt.location)
		}
	}
}

// Every way out of the two roots, and every dotfile, is a 404 that shows nothing.
func TestNoEscape(t *testing.T) {
	f := newFixture(t)
	absSecret := filepath.ToSlash(filepath.Join(f.root, "secret.txt"))
	targets := []string{
		"/../secret.txt",
		"/models/../secret.txt",
		"/models/../../secret.txt",
		"/models/../../etc/passwd",
		"/models/../../../../../../../../etc/passwd",
		"/sub/../index.html",
		"/./index.html",
		"/%2e%2e/secret.txt",
		"/%2E%2E%2Fsecret.txt",
		"/models/%2e%2e/%2e%2e/secret.txt",
		"/..%2fsecret.txt",
		"/models%2f..%2f..%2fsecret.txt",
		"/..\\secret.txt",
		"/%5c..%5csecret.txt",
		"/models/..%5c..%5csecret.txt",
		"/%2F" + strings.TrimPrefix(absSecret, "/"),
		"/" + absSecret, // "//tmp/…": an empty element
		absSecret,       // "/tmp/…": looked up inside the web root, where it is not
		"/index.html%00",
		"/secret.txt%00.html",
		"/%00",
		"/outside-link",
		"/outside-dir/",
		"/outside-dir",
		"/outside-dir/file.txt",
		"/abs-link",
		"/models/demo/link-outside",
		"/models/escape/manifest.json",
		"/models/escape/",
		"/.git/config",
		"/.git/",
		"/.env",
		"/dot-link", // a symlink inside the root to a dotfile
		"/models/.hidden/manifest.json",
		"/models/demo/.partial",
	}
	for _, target := range targets {
		w := do(f.h, "GET", target)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", target, w.Code)
		}
		if strings.Contains(w.Body.String(), secret) {
			t.Errorf("GET %s: served the secret", target)
		}
	}
}

// The same probes through a real listener, so nothing in net/http in front of the handler
// (path cleaning, redirects) changes the outcome.
func TestNoEscapeOverTCP(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	for _, target := range []string{
		"/../secret.txt",
		"/models/../../secret.txt",
		"/%2e%2e/%2e%2e/secret.txt",
		"/..%2f..%2fsecret.txt",
		"/..\\..\\secret.txt",
		"/outside-link",
		"/index.html%00",
	} {
		status, body := rawGet(t, srv.Listener.Addr().String(), target)
		if status != http.StatusNotFound {
			t.Errorf("GET %s over TCP: status %d, want 404", target, status)
		}
		if strings.Contains(body, secret) {
			t.Errorf("GET %s over TCP: served the secret", target)
		}
	}
}

// rawGet writes the request line exactly as given, which http.Client would not.
func rawGet(t *testing.T, addr, target string) (int, string) {
	t.Helper()
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The web root may itself be a symlink (a checkout elsewhere); its escapes stay closed.
func TestRootIsSymlink(t *testing.T) {
	f := newFixture(t)
	link := filepath.Join(f.root, "web-link")
	if err := os.Symlink("web", link); err != nil {
		t.Fatal(err)
	}
	h, err := newHandler(link, f.models)
	if err != nil {
		t.Fatal(err)
	}
	if w := do(h, "GET", "/"); w.Code != 200 || w.Body.String() != "<!doctype html>root index" {
		t.Errorf("GET / through a symlinked root: status %d, body %q", w.Code, w.Body.String())
	}
	for _, target := range []string{"/outside-link", "/../secret.txt", "/.env"} {
		if w := do(h, "GET", target); w.Code != 404 {
			t.Errorf("GET %s through a symlinked root: status %d, want 404", target, w.Code)
		}
	}
}

func TestNewHandlerErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct{ web, models, want string }{
		{missing, dir, fmt.Sprintf("web dir %q: no such directory", missing)},
		{file, dir, fmt.Sprintf("web dir %q: not a directory", file)},
		{dir, file, fmt.Sprintf("models dir %q: not a directory", file)},
		{dir, missing, ""}, // no packages yet
	}
	for _, tt := range tests {
		_, err := newHandler(tt.web, tt.models)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("newHandler(%q, %q): error %q, want %q", tt.web, tt.models, got, tt.want)
		}
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"", true},
		{"index.html", true},
		{"models/demo/shard-00000.bin", true},
		{"with space/a b", true},
		{"..", false},
		{".", false},
		{"a/../b", false},
		{"a/./b", false},
		{".git/config", false},
		{"a/.env", false},
		{"a//b", false},
		{"/abs", false},
		{"a/", false},
		{"a\\b", false},
		{"a\x00b", false},
	}
	for _, tt := range tests {
		if got := validName(tt.name); got != tt.want {
			t.Errorf("validName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
