package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startLine is the one line the server prints; tools read the port from it.
var startLine = regexp.MustCompile(`^serving (http://127\.0\.0\.1:(\d+)/) \(models: (.+)\)$`)

func TestServeURL(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, "http://127.0.0.1:8080/"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 1234}, "http://127.0.0.1:1234/"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 1234}, "http://127.0.0.1:1234/"},
		{&net.TCPAddr{Port: 1234}, "http://127.0.0.1:1234/"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 80}, "http://[::1]:80/"},
		{&net.TCPAddr{IP: net.IPv4(192, 168, 1, 2), Port: 9}, "http://192.168.1.2:9/"},
	}
	for _, tt := range tests {
		if got := serveURL(tt.addr); got != tt.want {
			t.Errorf("serveURL(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// syncBuffer is a bytes.Buffer that run's goroutines and the test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunFailures(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name   string
		args   []string
		status int
		stderr *regexp.Regexp // the whole of stderr
	}{
		{"missing web dir", []string{"--web", missing}, 1,
			regexp.MustCompile(`^server: web dir "` + regexp.QuoteMeta(missing) + `": no such directory\n$`)},
		{"port in use", []string{"--web", dir, "--addr", busy.Addr().String()}, 1,
			regexp.MustCompile(`^server: listen tcp ` + regexp.QuoteMeta(busy.Addr().String()) + `: .*address already in use\n$`)},
		{"bad address", []string{"--web", dir, "--addr", "127.0.0.1:http-alt-nope"}, 1,
			regexp.MustCompile(`^server: listen tcp.*unknown port\n$`)},
		{"unknown flag", []string{"--nope"}, 2, regexp.MustCompile(`flag provided but not defined: -nope`)},
		{"positional argument", []string{"--web", dir, "extra"}, 2,
			regexp.MustCompile(`^server: unexpected argument "extra" \(flags only, see -h\)\n$`)},
	}
	for _, tt := range tests {
		var stdout, stderr syncBuffer
		status := run(context.Background(), func() {}, tt.args, &stdout, &stderr)
		if status != tt.status || !tt.stderr.MatchString(stderr.String()) || stdout.String() != "" {
			t.Errorf("%s: run(%q) = %d, stdout %q, stderr %q; want %d and stderr matching %s",
				tt.name, tt.args, status, stdout.String(), stderr.String(), tt.status, tt.stderr)
		}
	}
}

// run in-process: the start line, a request, the --log line, and a clean exit once the
// context (the signal, in main) is done.
func TestRunServesUntilCancelled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdoutR, stdoutW := io.Pipe()
	var stderr syncBuffer
	released := make(chan struct{})
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, func() { close(released) },
			[]string{"--addr", "127.0.0.1:0", "--web", f.web, "--models", f.models, "--log"}, stdoutW, &stderr)
		stdoutW.Close()
	}()
	lines := bufio.NewScanner(stdoutR)
	if !lines.Scan() {
		t.Fatalf("no start line; stderr %q", stderr.String())
	}
	m := startLine.FindStringSubmatch(lines.Text())
	if m == nil || m[3] != f.models {
		t.Fatalf("start line %q: want %s with models %s", lines.Text(), startLine, f.models)
	}
	resp, err := http.Get(m[1] + "models/index.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /models/index.json: status %d", resp.StatusCode)
	}
	cancel()
	select {
	case status := <-exit:
		if status != 0 {
			t.Errorf("exit status %d after cancel, want 0; stderr %q", status, stderr.String())
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("run did not return after cancel")
	}
	select {
	case <-released:
	default:
		t.Error("signals were not released for the shutdown")
	}
	if lines.Scan() {
		t.Errorf("second stdout line %q: want exactly one", lines.Text())
	}
	logLine := regexp.MustCompile(`GET /models/index\.json 200 \d+B `)
	if !logLine.MatchString(stderr.String()) {
		t.Errorf("--log: stderr %q has no line matching %s", stderr.String(), logLine)
	}
}

func TestLogged(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	h := logged(f.h, log.New(&buf, "", 0))
	for _, tt := range []struct{ method, target, range_, want string }{
		{"GET", "/app.js", "", "GET /app.js 200 21B "},
		{"GET", "/models/demo/shard-00000.bin", "bytes=0-9", "GET /models/demo/shard-00000.bin 206 10B "},
		{"HEAD", "/missing?q=1", "", "HEAD /missing?q=1 404 "},
		{"DELETE", "/", "", "DELETE / 405 "},
	} {
		buf.Reset()
		r := httptest.NewRequest(tt.method, tt.target, nil)
		if tt.range_ != "" {
			r.Header.Set("Range", tt.range_)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if !strings.HasPrefix(buf.String(), tt.want) || strings.Count(buf.String(), "\n") != 1 {
			t.Errorf("%s %s: logged %q, want one line starting %q", tt.method, tt.target, buf.String(), tt.want)
		}
	}
}

// The built binary: one start line with the real port, serving, and exit 0 on SIGINT and
// on SIGTERM.
func TestBinaryStartAndShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin := filepath.Join(t.TempDir(), "server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f := newFixture(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--web", f.web, "--models", f.models)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			lines := bufio.NewScanner(stdout)
			if !lines.Scan() {
				t.Fatalf("no start line; stderr %q", stderr.String())
			}
			m := startLine.FindStringSubmatch(lines.Text())
			if m == nil || m[2] == "0" || m[3] != f.models {
				t.Fatalf("start line %q: want %s with a real port and models %s", lines.Text(), startLine, f.models)
			}
			resp, err := http.Get(m[1])
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "<!doctype html>root index" ||
				resp.Header.Get("Cross-Origin-Embedder-Policy") != "require-corp" {
				t.Fatalf("GET /: status %d, body %q, COEP %q", resp.StatusCode, body, resp.Header.Get("Cross-Origin-Embedder-Policy"))
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			var rest []string // stdout after the start line; read before Wait, as exec requires
			waited := make(chan error, 1)
			go func() {
				for lines.Scan() {
					rest = append(rest, lines.Text())
				}
				waited <- cmd.Wait()
			}()
			select {
			case err := <-waited:
				if err != nil {
					t.Errorf("after %v: %v; stderr %q", sig, err, stderr.String())
				}
			case <-time.After(shutdownTimeout + 5*time.Second):
				t.Fatalf("still running %v after %v", shutdownTimeout+5*time.Second, sig)
			}
			if len(rest) > 0 || stderr.String() != "" {
				t.Errorf("after the start line: stdout %q, stderr %q; want nothing", rest, stderr.String())
			}
		})
	}
}
