package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The hub the page may convert a checkpoint from (web/convert.js): --hub sets which hosts
// the page's Content-Security-Policy lets it connect to besides its own origin, and
// /hub.json tells the page which hub that is. The page contacts the hub only when a person
// asks it to convert, and only for the checkpoint's files; images and questions never
// leave the page either way.

// defaultHub is the Hugging Face hub; its large files are answered with a redirect to its
// file hosts (cdn-lfs.huggingface.co, cdn-lfs*.hf.co, cas-bridge.xethub.hf.co, …), which a
// connect-src must allow too: CSP checks every hop of a redirect.
const defaultHub = "https://huggingface.co"

var defaultHubHosts = []string{"https://huggingface.co", "https://*.huggingface.co", "https://*.hf.co"}

// hubPolicy is --hub: the hub's URL ("" for none) and the sources connect-src adds.
type hubPolicy struct {
	hub     string
	sources []string
}

// parseHub reads --hub: "none"; or the hub's URL followed by the origins of its file
// hosts, comma-separated ("https://hub.example,https://files.example"). The default hub
// brings its file hosts itself.
func parseHub(flag string) (hubPolicy, error) {
	flag = strings.TrimSpace(flag)
	if flag == "none" {
		return hubPolicy{}, nil
	}
	if flag == "" || flag == defaultHub {
		return hubPolicy{hub: defaultHub, sources: defaultHubHosts}, nil
	}
	var p hubPolicy
	for i, s := range strings.Split(flag, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Scheme != "https" && u.Scheme != "http") {
			return hubPolicy{}, fmt.Errorf("--hub: %q is not an http(s) URL (want none, or the hub's URL and its file hosts' origins, comma-separated)", s)
		}
		// CSP source expressions allow no quotes, semicolons or spaces: url.Parse has
		// already refused spaces; refuse the rest rather than write a broken policy.
		if strings.ContainsAny(u.Host, "';\"") {
			return hubPolicy{}, fmt.Errorf("--hub: %q is not a host name", u.Host)
		}
		origin := u.Scheme + "://" + u.Host
		if i == 0 {
			p.hub = strings.TrimSuffix(origin+u.EscapedPath(), "/")
		}
		p.sources = append(p.sources, origin)
	}
	return p, nil
}

// csp is the page's Content-Security-Policy with the hub's hosts in connect-src.
func (p hubPolicy) csp() string {
	base := securityHeaders[0][1]
	if len(p.sources) == 0 {
		return base
	}
	return strings.Replace(base, "connect-src 'self';", "connect-src 'self' "+strings.Join(p.sources, " ")+";", 1)
}

// withHub serves /hub.json and puts the hub's CSP on every answer of h.
func withHub(h http.Handler, p hubPolicy) http.Handler {
	info, _ := json.Marshal(map[string]any{"hub": nilIfEmpty(p.hub)})
	csp := p.csp()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hub.json" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			setSecurityHeaders(w.Header())
			w.Header().Set("Content-Security-Policy", csp)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-cache")
			w.Write(info)
			return
		}
		h.ServeHTTP(cspWriter{w, csp}, r)
	})
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// cspWriter puts the hub's policy in place of the page's own that the handler set, as its
// answer's header is written. Any other policy stays: browsers enforce every
// Content-Security-Policy header, and a file under /models/ has a second one, its sandbox.
type cspWriter struct {
	http.ResponseWriter
	csp string
}

func (w cspWriter) WriteHeader(code int) {
	w.swap()
	w.ResponseWriter.WriteHeader(code)
}

func (w cspWriter) Write(p []byte) (int, error) {
	w.swap() // a handler that writes without WriteHeader gets an implicit 200 here first
	return w.ResponseWriter.Write(p)
}

func (w cspWriter) swap() {
	h := w.Header()
	policies := h.Values("Content-Security-Policy")
	for i, v := range policies {
		if v == securityHeaders[0][1] {
			policies = slices.Clone(policies) // Values is the header's own slice
			policies[i] = w.csp
			h["Content-Security-Policy"] = policies
			return
		}
	}
}

// Unwrap lets http.ResponseController reach the connection (http.ServeContent's flushes).
func (w cspWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
