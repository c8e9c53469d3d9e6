package main

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzServe sends arbitrary request targets and Range headers to the handler: whatever
// the bytes, nothing outside the roots and no dotfile is served, a redirect stays on this
// host, and nothing panics. go test runs the seeds; go test -fuzz FuzzServe searches.
func FuzzServe(f *testing.F) {
	for _, target := range []string{
		"/", "/index.html", "/sub", "/sub/", "/models/index.json", "/models/demo/manifest.json",
		"/models/demo/shard-00000.bin", "/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
		"/..\\secret.txt", "/outside-link", "/outside-dir/file.txt", "/models/escape/manifest.json",
		"/models/demo/link-outside", "/.git/config", "/dot-link", "/models/demo/.partial",
		"/index.html%00", "//evil.example/", "/sub/?x=//evil", "http://evil.example/../secret.txt",
		"/models/alias/sub/extra.bin", "/linked-sub", "*",
	} {
		f.Add(target, "")
	}
	for _, rng := range []string{"bytes=0-9", "bytes=-0", "bytes=-100", "bytes=990-5000,0-1", "bytes=5-2", "pages=1-2"} {
		f.Add("/models/demo/shard-00000.bin", rng)
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, target, rng string) {
		raw := "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n"
		if rng != "" {
			raw += "Range: " + rng + "\r\n"
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + "\r\n")))
		if err != nil {
			return // net/http refuses it before any handler runs
		}
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		body := w.Body.String()
		if strings.Contains(body, secret) || strings.Contains(body, "half-written shard") {
			t.Fatalf("GET %q (Range %q): status %d served a file it must not", target, rng, w.Code)
		}
		switch w.Code {
		case 200, 206, 304, 404, 416:
		case 301:
			loc := w.Header().Get("Location")
			if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") {
				t.Fatalf("GET %q: redirect to %q leaves this host", target, loc)
			}
		default:
			t.Fatalf("GET %q (Range %q): status %d", target, rng, w.Code)
		}
		if w.Header().Get("Content-Security-Policy") == "" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("GET %q: status %d without the security headers", target, w.Code)
		}
	})
}
