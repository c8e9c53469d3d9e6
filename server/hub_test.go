package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHub(t *testing.T) {
	for _, tc := range []struct {
		flag, hub, connect, err string
	}{
		{flag: "", hub: `"https://huggingface.co"`, connect: "connect-src 'self' https://huggingface.co https://*.huggingface.co https://*.hf.co;"},
		{flag: defaultHub, hub: `"https://huggingface.co"`, connect: "connect-src 'self' https://huggingface.co https://*.huggingface.co https://*.hf.co;"},
		{flag: "none", hub: "null", connect: "connect-src 'self';"},
		{flag: "http://127.0.0.1:9000,http://127.0.0.1:9001/x", hub: `"http://127.0.0.1:9000"`, connect: "connect-src 'self' http://127.0.0.1:9000 http://127.0.0.1:9001;"},
		{flag: "https://mirror.example/hub/", hub: `"https://mirror.example/hub"`, connect: "connect-src 'self' https://mirror.example;"},
		{flag: "ftp://x", err: `"ftp://x" is not an http(s) URL`},
		{flag: "https://a;b", err: "not"},
		{flag: "huggingface.co", err: "not an http(s) URL"},
	} {
		p, err := parseHub(tc.flag)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("--hub %q: error %v, want %q", tc.flag, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("--hub %q: %v", tc.flag, err)
			continue
		}
		h := withHub(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			setSecurityHeaders(w.Header())
			w.Write([]byte("page"))
		}), p)
		for _, path := range []string{"/", "/hub.json"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			csp := rec.Header().Get("Content-Security-Policy")
			if !strings.Contains(csp, tc.connect) || !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("--hub %q %s: CSP %q, want %q", tc.flag, path, csp, tc.connect)
			}
			if path == "/hub.json" {
				if want := `{"hub":` + tc.hub + `}`; rec.Body.String() != want {
					t.Errorf("--hub %q: /hub.json %s, want %s", tc.flag, rec.Body, want)
				}
			}
		}
	}
}

// TestHubKeepsSandbox: the hub's policy replaces the page's own, and adds to no other: a
// file under /models/ keeps its second, sandbox policy (TestModelsNotActiveContent) when
// the server runs with a hub, as it does by default.
func TestHubKeepsSandbox(t *testing.T) {
	f := newFixture(t)
	p, err := parseHub("")
	if err != nil {
		t.Fatal(err)
	}
	h := withHub(f.h, p)
	for _, tc := range []struct {
		target string
		want   []string
	}{
		{"/models/demo/shard-00000.bin", []string{p.csp(), "sandbox"}},
		{"/models/demo/manifest.json", []string{p.csp(), "sandbox"}},
		{"/app.js", []string{p.csp()}},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			got := do(h, method, tc.target).Header().Values("Content-Security-Policy")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("%s %s: Content-Security-Policy %q, want %q", method, tc.target, got, tc.want)
			}
		}
	}
}
