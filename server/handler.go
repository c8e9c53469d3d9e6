package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// securityHeaders go on every response, errors and redirects included. The page runs
// WebAssembly and a worker from its own origin and nothing else: the CSP allows exactly
// that (blob: and data: only for image previews), and COOP+COEP make the page cross-origin
// isolated, which SharedArrayBuffer and precise timers need.
var securityHeaders = [][2]string{
	{"Content-Security-Policy", "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; " +
		"worker-src 'self'; connect-src 'self'; img-src 'self' blob: data:; style-src 'self'; " +
		"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Cross-Origin-Embedder-Policy", "require-corp"},
	{"Cross-Origin-Resource-Policy", "same-origin"},
	{"Referrer-Policy", "no-referrer"},
	{"X-Content-Type-Options", "nosniff"},
}

// setSecurityHeaders puts securityHeaders on h.
func setSecurityHeaders(h http.Header) {
	for _, kv := range securityHeaders {
		h.Set(kv[0], kv[1])
	}
}

// contentTypes is the whole list of types we serve. It is ours rather than
// mime.TypeByExtension's, which reads the host's mime.types and so differs between machines
// (browsers refuse a module script or streaming WebAssembly compile with the wrong type).
// Anything else, model shards included, is application/octet-stream.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".wasm":        "application/wasm",
	".webmanifest": "application/manifest+json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".webp":        "image/webp",
	".ico":         "image/x-icon",
	".txt":         "text/plain; charset=utf-8",
}

func contentType(name string) string {
	if t, ok := contentTypes[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return "application/octet-stream"
}

// modelsContentType is the type of a file under /models/. A package is data (JSON and
// shards), and the folder may hold whatever a user copied into it: HTML, JS or SVG there
// must not run on the app's origin, where it could read the offline cache or script the
// page. So only JSON keeps its type; everything else is application/octet-stream, which a
// browser with nosniff neither renders nor runs (modelsHeaders adds more).
func modelsContentType(name string) string {
	if strings.EqualFold(path.Ext(name), ".json") {
		return "application/json"
	}
	return "application/octet-stream"
}

// modelsHeaders are added to every file served under /models/: a navigation to one
// downloads it instead of displaying it, and were it displayed anyway, the second policy
// (browsers enforce every Content-Security-Policy header) sandboxes it: an opaque origin,
// scripts off.
var modelsHeaders = [][2]string{
	{"Content-Disposition", "attachment"},
	{"Content-Security-Policy", "sandbox"},
}

// Cache policy. Everything revalidates through the ETag, which costs a 304 and no body.
// The app shell and the files that say what a package holds (manifest.json, index.json)
// revalidate on every use, so a rebuilt app or a re-converted package shows up on reload.
// Other package files (the shards) may be reused for an hour without asking: they are large
// and read many times while loading, but a package can be re-converted in place under the
// same names, so they are not immutable. The app checks shards against the manifest's
// hashes and can refetch a stale one with fetch(..., {cache: "reload"}).
const (
	revalidate  = "no-cache"
	shardMaxAge = "max-age=3600"
)

func appCacheControl(string) string { return revalidate }

func modelsCacheControl(name string) string {
	if path.Base(name) == "manifest.json" {
		return revalidate
	}
	return shardMaxAge
}

// A tree is one directory mapped into the URL space.
type tree struct {
	dir          string // absolute; its symlinks are resolved per request (see statIn)
	cacheControl func(name string) string
	contentType  func(name string) string
	extra        [][2]string // headers added to every file served
}

// handler serves the app at / and model packages under /models/, GET and HEAD only.
type handler struct {
	web, models tree
	index       indexCache
	log         *log.Logger // problems the operator should see (an unreadable package)
}

// newHandler serves webDir at / and modelsDir under /models/. webDir must exist; a missing
// modelsDir only means there are no packages yet (it is looked up again on every request).
func newHandler(webDir, modelsDir string) (*handler, error) {
	web, err := filepath.Abs(webDir)
	if err != nil {
		return nil, fmt.Errorf("web dir %q: %v", webDir, err)
	}
	switch info, err := os.Stat(web); {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("web dir %q: no such directory", webDir)
	case err != nil:
		return nil, fmt.Errorf("web dir %q: %v", webDir, err)
	case !info.IsDir():
		return nil, fmt.Errorf("web dir %q: not a directory", webDir)
	}
	models, err := filepath.Abs(modelsDir)
	if err != nil {
		return nil, fmt.Errorf("models dir %q: %v", modelsDir, err)
	}
	switch info, err := os.Stat(models); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("models dir %q: %v", modelsDir, err)
	case !info.IsDir():
		return nil, fmt.Errorf("models dir %q: not a directory", modelsDir)
	}
	return &handler{
		web:    tree{dir: web, cacheControl: appCacheControl, contentType: contentType},
		models: tree{dir: models, cacheControl: modelsCacheControl, contentType: modelsContentType, extra: modelsHeaders},
		log:    log.New(os.Stderr, "server: ", 0),
	}, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		fail(w, http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path // already percent-decoded
	if p == "" {
		p = "/"
	}
	if !strings.HasPrefix(p, "/") {
		fail(w, http.StatusNotFound)
		return
	}
	rest := p[1:]
	name, wantDir := strings.CutSuffix(rest, "/")
	if rest == "" {
		wantDir = true // "/" is the web root itself
	}
	if !validName(name) || (wantDir && name == "" && rest != "") {
		fail(w, http.StatusNotFound)
		return
	}
	switch {
	case name == "models/index.json" && !wantDir:
		h.serveIndex(w, r)
	case name == "models" || strings.HasPrefix(name, "models/"):
		name = strings.TrimPrefix(strings.TrimPrefix(name, "models"), "/")
		h.models.serve(w, r, name, wantDir)
	default:
		h.web.serve(w, r, name, wantDir)
	}
}

// serve answers for name below t (wantDir: the URL ended in a slash). A directory is served
// as its index.html, never as a listing.
func (t tree) serve(w http.ResponseWriter, r *http.Request, name string, wantDir bool) {
	_, _, info, err := statIn(t.dir, name)
	if err != nil {
		failErr(w, err)
		return
	}
	if info.IsDir() {
		index := path.Join(name, "index.html")
		if _, _, ii, err := statIn(t.dir, index); err != nil || !ii.Mode().IsRegular() {
			fail(w, http.StatusNotFound)
			return
		}
		if !wantDir {
			// Relative links in the index resolve against the directory only with the
			// slash. The path cannot start with "//" (validName), so this stays on our host.
			u := url.URL{Path: r.URL.Path + "/", RawQuery: r.URL.RawQuery}
			http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
			return
		}
		name = index
	} else if wantDir {
		fail(w, http.StatusNotFound)
		return
	}
	f, info, err := openIn(t.dir, name)
	if err != nil {
		failErr(w, err)
		return
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("Content-Type", t.contentType(name))
	hd.Set("Cache-Control", t.cacheControl(name))
	hd.Set("ETag", fileETag(info))
	for _, kv := range t.extra {
		hd.Add(kv[0], kv[1])
	}
	if rng, ok := checkRange(r.Header.Get("Range"), info.Size()); ok {
		r = r.Clone(r.Context()) // a handler must not change the request it is given
		r.Header.Set("Range", rng)
	}
	// ServeContent does Range (206, 416), If-Range, If-None-Match, If-Modified-Since and
	// HEAD, and sets Last-Modified; it streams the file without reading it whole.
	http.ServeContent(w, r, name, info.ModTime(), f)
}

// fileETag is a strong validator made of the size and the nanosecond mtime, not a content
// hash: shards are gigabytes, and a hash would have to be computed per request or cached and
// invalidated by exactly these two values anyway. Rewriting a file (a re-conversion) changes
// its mtime.
func fileETag(info fs.FileInfo) string {
	return fmt.Sprintf(`"%x-%x"`, info.Size(), info.ModTime().UnixNano())
}

// failErr answers for a path that could not be served. Whatever the reason (missing,
// outside the root, a dotfile, a symlink loop) it is 404, so that a probe cannot tell which;
// only a permission error, which is the operator's to fix, says so.
func failErr(w http.ResponseWriter, err error) {
	if errors.Is(err, fs.ErrPermission) {
		fail(w, http.StatusForbidden)
		return
	}
	fail(w, http.StatusNotFound)
}

// fail writes a one-line error. It is not cached: a package converted a moment later must
// not stay hidden behind a remembered 404.
func fail(w http.ResponseWriter, code int) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, http.StatusText(code), code)
}
