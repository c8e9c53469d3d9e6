package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cogvlm-web/cogvlm-web/internal/browser"
	"github.com/cogvlm-web/cogvlm-web/internal/rehearsal"
	"github.com/cogvlm-web/cogvlm-web/model/demo"
	"github.com/cogvlm-web/cogvlm-web/model/pkg"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// repoRoot is the module root, seen from this package's folder (where go test runs).
const repoRoot = "../.."

// screenshotDir is where the run leaves pictures of the page's main states (gitignored).
var screenshotDir = filepath.Join(repoRoot, "test-output", "screenshots")

// browserTimeout bounds one test's browser: far more than a run needs (about a minute).
const browserTimeout = 8 * time.Minute

// demoShardBytes splits the demo package into several shards (the shipped one has a
// single 4.6 MB shard), so that parallel downloads, resuming and per-shard verification
// are exercised.
const demoShardBytes = 128 << 10

// fixture is everything a test serves and compares with, built fresh into a temp folder
// once per test binary (see TestMain).
type fixture struct {
	web    string // the app: web/ with a cogvlm.wasm built from this tree, and the unit tests in web/e2e/
	models string // served under /models/; holds the demo package as models/demo
	demo   string // models/demo
	server string // the server binary
	cli    string // the cogvlm binary (the CPU reference)
	tmp    string
}

var shared struct {
	once sync.Once
	dir  string
	f    *fixture
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// getFixture builds the fixture on first use.
func getFixture(t *testing.T) *fixture {
	t.Helper()
	shared.once.Do(func() {
		start := time.Now()
		if shared.dir, shared.err = os.MkdirTemp("", "cogvlm-e2e-"); shared.err == nil {
			shared.f, shared.err = buildFixture(shared.dir)
		}
		t.Logf("built the engine, server, CLI and demo package in %v", time.Since(start).Round(time.Millisecond))
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.f
}

func buildFixture(dir string) (*fixture, error) {
	f := &fixture{
		web:    filepath.Join(dir, "web"),
		models: filepath.Join(dir, "models"),
		server: filepath.Join(dir, "bin", "server"),
		cli:    filepath.Join(dir, "bin", "cogvlm"),
		tmp:    dir,
	}
	f.demo = filepath.Join(f.models, "demo")
	steps := []func() error{
		func() error { return rehearsal.GoBuild(repoRoot, nil, f.server, "./server") },
		func() error { return rehearsal.GoBuild(repoRoot, nil, f.cli, "./cmd/cogvlm") },
		func() error { return rehearsal.BuildApp(repoRoot, f.web) },
		func() error {
			return rehearsal.GoBuild(repoRoot, []string{"GOOS=js", "GOARCH=wasm"}, filepath.Join(f.web, "convert.wasm"), "-trimpath", "-ldflags=-s -w", "./wasm/convert")
		},
		func() error { return rehearsal.CopyApp("testdata", filepath.Join(f.web, "e2e")) },
		func() error {
			// The file-name table that Go's format.CheckFileName is tested on, for unit.js.
			return rehearsal.CopyFile(filepath.Join(repoRoot, "model", "format", "testdata", "file_names.json"), filepath.Join(f.web, "e2e", "file_names.json"))
		},
		func() error {
			hf := filepath.Join(dir, "demo-hf")
			if err := demo.Write(hf); err != nil {
				return fmt.Errorf("demo.Write: %v", err)
			}
			if err := os.MkdirAll(f.models, 0o755); err != nil {
				return err
			}
			return pkg.Convert(hf, f.demo, pkg.ConvertOptions{Quant: quant.Q4, ShardBytes: demoShardBytes})
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// reference is the CPU reference's answer (`cogvlm generate --json`, last line).
type reference struct {
	InputIDs     []int  `json:"input_ids"`
	GeneratedIDs []int  `json:"generated_ids"`
	Text         string `json:"generated_text"`
}

// question is one greedy question, asked of the CPU reference and of the page alike.
type question struct {
	Query, Template string      // Template "": the default, as neither names one
	Image           string      // file, or ""
	History         [][2]string // earlier [question, answer] turns
	MaxNewTokens    int
}

func (f *fixture) reference(t *testing.T, q question) reference {
	t.Helper()
	args := []string{"generate", "--model", f.demo, "--query", q.Query,
		"--temperature", "0", "--max-new-tokens", fmt.Sprint(q.MaxNewTokens), "--json"}
	if q.Template != "" {
		args = append(args, "--template", q.Template)
	}
	if q.Image != "" {
		args = append(args, "--image", q.Image)
	}
	if len(q.History) > 0 {
		b, _ := json.Marshal(q.History)
		h, err := os.CreateTemp(f.tmp, "history-*.json")
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
		h.Close()
		args = append(args, "--history", h.Name())
	}
	out := strings.TrimSpace(run(t, repoRoot, f.cli, args...))
	var r reference
	if err := json.Unmarshal([]byte(out[strings.LastIndexByte(out, '\n')+1:]), &r); err != nil {
		t.Fatalf("cogvlm generate --json: %v\n%s", err, out)
	}
	return r
}

// server is the real server binary, serving the fixture.
type server = rehearsal.Server

// startServer starts the server on a free port and waits for its "serving URL" line.
func (f *fixture) startServer(t *testing.T) *server {
	t.Helper()
	return f.startServerOf(t, f.models)
}

// session starts the server on models, a browser whose every request rec records, and
// the browser's first tab.
func (f *fixture) session(t *testing.T, models string) (srv *server, rec *recorder, tb *tab) {
	t.Helper()
	srv = f.startServerOf(t, models)
	bctx := startBrowser(t)
	return srv, recordNetwork(t, bctx), openTab(t, bctx)
}

// startServerOf is startServer serving the packages of another models folder, with more
// flags if given; the test's cleanup stops it.
func (f *fixture) startServerOf(t *testing.T, models string, flags ...string) *server {
	t.Helper()
	s, err := rehearsal.StartServer(f.server, models, f.web, flags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// tab is one browser tab and what its page logged.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu         sync.Mutex
	problems   []string // console errors and warnings (a failed download logs one)
	exceptions []string // uncaught exceptions: always a bug
}

// startBrowser starts headless Chromium with a fresh profile that lives as long as the
// test: a reload keeps the stored model and the service worker.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	requireBrowser(t)
	var log io.Writer
	if os.Getenv("COGVLM_E2E_CHROME_LOG") != "" {
		log = os.Stderr
	}
	// A page that never reaches a state fails the test instead of hanging it.
	deadline, stop := context.WithTimeout(context.Background(), browserTimeout)
	t.Cleanup(stop)
	ctx, cancel, err := browser.Start(deadline, browser.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return ctx
}

// requireBrowser fails the test when Chromium is missing. The policy of ./build.sh test:
// only an explicit SKIP_BROWSER=1 outside CI skips.
func requireBrowser(t *testing.T) {
	t.Helper()
	if _, err := browser.Find(); err != nil {
		if os.Getenv("SKIP_BROWSER") == "1" && os.Getenv("CI") != "true" {
			t.Skipf("SKIP_BROWSER=1: %v", err)
		}
		t.Fatal(err)
	}
}

// another opens one more tab in tb's browser context.
func (tb *tab) another() *tab {
	ctx, cancel := chromedp.NewContext(tb.ctx)
	tb.t.Cleanup(cancel)
	return openTab(tb.t, ctx)
}

// openTab starts the tab of ctx (the browser's first one, or a new one for a child
// context) and records what its page logs.
func openTab(t *testing.T, ctx context.Context) *tab {
	t.Helper()
	tb := &tab{t: t, ctx: ctx}
	console := chromedp.Console(ctx)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			tb.mu.Lock()
			switch {
			case m.IsException():
				tb.exceptions = append(tb.exceptions, m.String())
			case m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning:
				tb.problems = append(tb.problems, m.String())
			}
			tb.mu.Unlock()
		}
	}()
	return tb
}

func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatalf("%v (page: %s)", err, tb.describe())
	}
}

// eval evaluates a JavaScript expression in the page, awaiting a promise.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it is true.
func (tb *tab) waitFor(what, cond string, timeout time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool]("Boolean("+cond+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("waited %v for %s (%s); page: %s", timeout, what, cond, tb.describe())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitState waits for the page's body[data-state].
func (tb *tab) waitState(state string, timeout time.Duration) {
	tb.t.Helper()
	tb.waitFor("state "+state, fmt.Sprintf("document.body.dataset.state === %q", state), timeout)
}

// describe summarizes what the page shows, for failure messages.
func (tb *tab) describe() string {
	s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`JSON.stringify({
		state: document.body.dataset.state,
		progress: document.getElementById('progress-text')?.textContent,
		model: document.getElementById('model-status')?.textContent,
		loadError: document.getElementById('load-error')?.hidden ? '' : document.getElementById('load-error-text')?.textContent,
		chatError: document.getElementById('chat-error')?.hidden ? '' : document.getElementById('chat-error-text')?.textContent,
		fatal: document.getElementById('fatal')?.hidden ? '' : document.getElementById('fatal-text')?.textContent,
	})`))
	if err != nil {
		s = err.Error()
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if p := append(slices.Clone(tb.exceptions), tb.problems...); len(p) > 0 {
		s += "; console: " + strings.Join(p, " | ")
	}
	return s
}

func (tb *tab) text(id string) string {
	tb.t.Helper()
	return eval[string](tb, fmt.Sprintf("document.getElementById(%q).textContent", id))
}

// screenshot saves the whole page as test-output/screenshots/NAME.png.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}
