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
