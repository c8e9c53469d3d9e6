package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// deepFolder makes a chain of folders below dir whose full path is longer than PATH_MAX,
// built one level at a time through os.Root so that no call sees the whole path. Walking
// into it fails with ENAMETOOLONG whoever runs the test (root ignores permissions, so
// chmod 000 cannot make a folder unreadable there).
func deepFolder(t *testing.T, dir string) {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("d", 200)
	for range 25 { // 25 × 201 bytes > 4096
		if err := r.Mkdir(name, 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := r.OpenRoot(name)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		r = next
	}
	if err := r.WriteFile("deep.bin", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.Close()
}

// One package that cannot be walked is left out of the index and logged; the others are
// listed, and no response carries a filesystem path.
func TestIndexSkipsUnreadablePackage(t *testing.T) {
	f := newFixture(t)
	broken := filepath.Join(f.models, "broken")
	if err := os.MkdirAll(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "manifest.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	deepFolder(t, broken)
	var logged bytes.Buffer
	f.h.(*handler).log = log.New(&logged, "", 0)

	w := do(f.h, "GET", "/models/index.json")
	if w.Code != http.StatusOK {
		t.Fatalf("GET /models/index.json with one unreadable package: status %d, body %q; want 200", w.Code, w.Body.String())
	}
	body := w.Body.String()
	if strings.Contains(body, `"broken"`) || !strings.Contains(body, `"name":"demo"`) {
		t.Errorf("index %s: want demo listed and broken left out", body)
	}
	if strings.Contains(body, f.root) {
		t.Errorf("index %s names a filesystem path", body)
	}
	if !strings.Contains(logged.String(), `skipping package "broken"`) {
		t.Errorf("log %q: want the skipped package named", logged.String())
	}
}

// A models dir that cannot be read at all is a 500 that says nothing about the filesystem;
// the details go to the log.
func TestIndexUnreadableRootHidesPath(t *testing.T) {
	f := newFixture(t)
	var logged bytes.Buffer
	f.h.(*handler).log = log.New(&logged, "", 0)
	if err := os.RemoveAll(f.models); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.models, []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := do(f.h, "GET", "/models/index.json")
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("models dir replaced by a file: status %d, want 500", w.Code)
	}
	if strings.Contains(w.Body.String(), f.root) || strings.Contains(w.Body.String(), "models") {
		t.Errorf("500 body %q names a path", w.Body.String())
	}
	if !strings.Contains(logged.String(), f.models) {
		t.Errorf("log %q: want the details, path included, for the operator", logged.String())
	}
}

// The index is not rebuilt when nothing changed: a file added where the fingerprint does
// not look (a subfolder of a package) shows up only after indexMaxAge, while a new package
// shows up at once.
func TestIndexCached(t *testing.T) {
	f := newFixture(t)
	h := f.h.(*handler)
	first := do(h, "GET", "/models/index.json").Body.String()
	if err := os.WriteFile(filepath.Join(f.models, "demo", "sub", "more.bin"), make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := do(h, "GET", "/models/index.json").Body.String(); got != first {
		t.Fatalf("index rebuilt although the fingerprint did not change:\n got %s\nwant %s", got, first)
	}
	h.index.mu.Lock()
	h.index.built = time.Now().Add(-indexMaxAge)
	h.index.mu.Unlock()
	if got := do(h, "GET", "/models/index.json").Body.String(); got == first {
		t.Fatalf("index still %s after indexMaxAge", got)
	}
	// A new package is seen at once.
	if err := os.MkdirAll(filepath.Join(f.models, "new"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.models, "new", "manifest.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := do(h, "GET", "/models/index.json").Body.String(); !strings.Contains(got, `"name":"new"`) {
		t.Errorf("index %s: the new package is missing", got)
	}
	// A manifest rewritten in place (same folder) is seen at once.
	if err := os.WriteFile(filepath.Join(f.models, "new", "manifest.json"), []byte("{\"x\":1}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := do(h, "GET", "/models/index.json").Body.String(); !strings.Contains(got, `"name":"new","manifest":"/models/new/manifest.json","bytes":7}`) {
		t.Errorf("index %s: the rewritten manifest's size is stale", got)
	}
}

// BenchmarkIndex serves index.json for 4 packages of 500 files each: what the cache saves
// is the walk.
func BenchmarkIndex(b *testing.B) {
	models := b.TempDir()
	for p := range 4 {
		dir := filepath.Join(models, fmt.Sprintf("pkg%d", p))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range 500 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("shard-%05d.bin", i)), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte("{}"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	h, err := newHandler(b.TempDir(), models)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if w := do(h, "GET", "/models/index.json"); w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

func TestRangeLimits(t *testing.T) {
	f := newFixture(t)
	const target = "/models/demo/shard-00000.bin"
	many := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf("%d-%d", i*10, i*10+1)
		}
		return "bytes=" + strings.Join(parts, ",")
	}
	tests := []struct {
		rng          string
		status       int
		contentRange string
		body         []byte
	}{
		{"bytes=-0", 416, "bytes */1000", nil},
		{"bytes=-000", 416, "bytes */1000", nil},
		{"bytes= -0 ", 416, "bytes */1000", nil},
		{"bytes=-0,-0", 416, "bytes */1000", nil},
		{"bytes=-0,0-9", 206, "bytes 0-9/1000", shard[:10]}, // the empty range is dropped
		{"bytes=-1", 206, "bytes 999-999/1000", shard[999:]},
		{many(maxRanges + 1), 416, "bytes */1000", nil},
		{many(100), 416, "bytes */1000", nil},
	}
	for _, tt := range tests {
		w := do(f.h, "GET", target, "Range", tt.rng)
		if w.Code != tt.status || w.Header().Get("Content-Range") != tt.contentRange {
			t.Errorf("Range %.40q: status %d, Content-Range %q; want %d, %q", tt.rng, w.Code, w.Header().Get("Content-Range"), tt.status, tt.contentRange)
			continue
		}
		if tt.body != nil && !bytes.Equal(w.Body.Bytes(), tt.body) {
			t.Errorf("Range %q: body %d bytes, want %d", tt.rng, w.Body.Len(), len(tt.body))
		}
	}
	// maxRanges ranges are still served, as one multipart body.
	w := do(f.h, "GET", target, "Range", many(maxRanges))
	if ct := w.Header().Get("Content-Type"); w.Code != 206 || !strings.HasPrefix(ct, "multipart/byteranges") {
		t.Errorf("%d ranges: status %d, Content-Type %q; want 206 multipart", maxRanges, w.Code, ct)
	}
	// A stale If-Range still means the whole file, even for a range that would be refused.
	if w := do(f.h, "GET", target, "Range", "bytes=-0", "If-Range", `"stale"`); w.Code != 200 || w.Body.Len() != len(shard) {
		t.Errorf("bytes=-0 with a stale If-Range: status %d with %d bytes, want 200 with the file", w.Code, w.Body.Len())
	}
}

// Files under /models/ are data: whatever their name, they are never served as something
// a browser renders or runs on the app's origin.
func TestModelsNotActiveContent(t *testing.T) {
	f := newFixture(t)
	for name, content := range map[string]string{
		"evil.html": "<script>alert(1)</script>", "evil.js": "alert(1)", "evil.mjs": "alert(1)",
		"evil.svg": "<svg onload=alert(1)/>", "evil.css": "*{}", "evil.wasm": "\x00asm",
	} {
		if err := os.WriteFile(filepath.Join(f.models, "demo", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, target := range []string{"/models/demo/evil.html", "/models/demo/evil.js", "/models/demo/evil.mjs",
		"/models/demo/evil.svg", "/models/demo/evil.css", "/models/demo/evil.wasm", "/models/demo/shard-00000.bin"} {
		w := do(f.h, "GET", target)
		hd := w.Header()
		if w.Code != 200 || hd.Get("Content-Type") != "application/octet-stream" || hd.Get("Content-Disposition") != "attachment" ||
			hd.Get("X-Content-Type-Options") != "nosniff" || !contains(hd.Values("Content-Security-Policy"), "sandbox") {
			t.Errorf("GET %s: status %d, headers %v; want 200 octet-stream, attachment, nosniff and a sandbox policy", target, w.Code, hd)
		}
	}
	// JSON stays JSON (the app fetches it), under the same sandbox.
	if w := do(f.h, "GET", "/models/demo/manifest.json"); w.Header().Get("Content-Type") != "application/json" ||
		!contains(w.Header().Values("Content-Security-Policy"), "sandbox") {
		t.Errorf("manifest.json: headers %v", w.Header())
	}
	// The app's own files keep their types.
	if ct := do(f.h, "GET", "/app.js").Header().Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("/app.js: Content-Type %q", ct)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestHostPolicy(t *testing.T) {
	loopback := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	lan := &net.TCPAddr{IP: net.IPv4(192, 168, 1, 2), Port: 8080}
	all := &net.TCPAddr{IP: net.IPv4zero, Port: 8080}
	tests := []struct {
		addr  net.Addr
		names []string
		host  string
		want  bool
	}{
		{loopback, nil, "127.0.0.1:8080", true},
		{loopback, nil, "127.0.0.1", true},
		{loopback, nil, "127.1.2.3:8080", true}, // loopback
		{loopback, nil, "[::1]:8080", true},
		{loopback, nil, "[::1]", true},
		{loopback, nil, "localhost:8080", true},
		{loopback, nil, "LOCALHOST.:8080", true},
		{loopback, nil, "app.localhost:8080", true},
		{loopback, nil, "evil.example:8080", false}, // DNS rebinding
		{loopback, nil, "localhost.evil.example", false},
		{loopback, nil, "evillocalhost", false},
		{loopback, nil, "192.168.1.2:8080", false}, // not an address we listen on
		{loopback, nil, "", false},
		{loopback, []string{"mybox.lan"}, "MyBox.lan:8080", true},
		{loopback, []string{"mybox.lan"}, "other.lan:8080", false},
		{lan, nil, "192.168.1.2:8080", true},
		{lan, nil, "192.168.1.3:8080", false},
		{all, nil, "10.0.0.7:8080", true}, // listening everywhere: any address of ours
		{all, nil, "[fe80::1]:8080", true},
		{all, nil, "evil.example:8080", false},
	}
	for _, tt := range tests {
		if got := newHostPolicy(tt.addr, tt.names).allows(tt.host); got != tt.want {
			t.Errorf("listening on %v, allowed %q: Host %q allowed = %v, want %v", tt.addr, tt.names, tt.host, got, tt.want)
		}
	}
}

// startServer runs the whole program in-process on a free port and returns its address.
func startServer(t *testing.T, f *fixture, args ...string) string {
	t.Helper()
	stdoutR, stdoutW := io.Pipe()
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	go func() {
		run(ctx, func() {}, append([]string{"--addr", "127.0.0.1:0", "--web", f.web, "--models", f.models}, args...), stdoutW, &stderr)
		stdoutW.Close()
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	lines := bufio.NewScanner(stdoutR)
	if !lines.Scan() {
		t.Fatalf("no start line; stderr %q", stderr.String())
	}
	m := startLine.FindStringSubmatch(lines.Text())
	if m == nil {
		t.Fatalf("start line %q", lines.Text())
	}
	go io.Copy(io.Discard, stdoutR)
	return "127.0.0.1:" + m[2]
}

// rawExchange writes req as given and reads one response.
func rawExchange(t *testing.T, addr, req string) *http.Response {
	t.Helper()
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%.60q: %v", req, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

// Through the real server: a foreign Host is refused, and the answers net/http writes by
// itself carry the security headers too.
func TestServerAnswersOverTCP(t *testing.T) {
	f := newFixture(t)
	addr := startServer(t, f)
	tests := []struct {
		name, req string
		status    int
	}{
		{"localhost", "GET /app.js HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 200},
		{"address", "GET /app.js HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n\r\n", 200},
		{"rebound name", "GET /app.js HTTP/1.1\r\nHost: attacker.example:" + strings.Split(addr, ":")[1] + "\r\nConnection: close\r\n\r\n", 421},
		{"rebound index", "GET /models/index.json HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n", 421},
		{"no host", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 400},
		{"bad host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"bad request line", "NOT HTTP\r\n\r\n", 400},
		{"version", "GET / HTTP/2.5\r\nHost: localhost\r\n\r\n", 505},
		{"huge header", "GET / HTTP/1.1\r\nHost: localhost\r\nX: " + strings.Repeat("a", 1<<21) + "\r\n\r\n", 431},
		{"transfer encoding", "GET / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
	}
	for _, tt := range tests {
		resp := rawExchange(t, addr, tt.req)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
		for _, kv := range securityHeaders {
			want := kv[1]
			if kv[0] == "Content-Security-Policy" && resp.StatusCode == 200 {
				// The page may reach the default hub (--hub); refusals keep the self-only policy.
				p, _ := parseHub("")
				want = p.csp()
			}
			if got := resp.Header.Get(kv[0]); got != want {
				t.Errorf("%s (%d): %s = %q, want %q", tt.name, resp.StatusCode, kv[0], got, want)
			}
		}
		if resp.StatusCode >= 400 && resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s (%d): Cache-Control %q, want no-store", tt.name, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
	// A shard still goes out whole over the wrapped connection (sendfile path).
	resp := rawExchange(t, addr, "GET /models/demo/shard-00000.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || !bytes.Equal(body, shard) {
		t.Errorf("shard over TCP: status %d, %d bytes", resp.StatusCode, len(body))
	}
}

func TestAddServerErrorHeaders(t *testing.T) {
	for _, b := range []string{
		"HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		"hello",
		"",
	} {
		if _, ok := addServerErrorHeaders([]byte(b)); ok {
			t.Errorf("addServerErrorHeaders(%q) changed a write that is not a net/http error answer", b)
		}
	}
	got, ok := addServerErrorHeaders([]byte("HTTP/1.1 400 Bad Request" + serverErrorHeaders + "400 Bad Request"))
	if !ok || !strings.HasPrefix(string(got), "HTTP/1.1 400 Bad Request\r\nCache-Control: no-store\r\nContent-Security-Policy: ") ||
		!strings.HasSuffix(string(got), serverErrorHeaders+"400 Bad Request") {
		t.Errorf("addServerErrorHeaders: %q", got)
	}
}
