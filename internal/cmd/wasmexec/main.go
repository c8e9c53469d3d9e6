// Command wasmexec runs a GOOS=js GOARCH=wasm program — usually a test binary — in headless
// Chromium with WebGPU on SwiftShader, and exits with the program's exit code. It is the
// `go test -exec` runner for the engine's browser tests:
//
//	go build -o .bin/go_js_wasm_exec ./internal/cmd/wasmexec
//	GOOS=js GOARCH=wasm go test -exec "$PWD/.bin/go_js_wasm_exec" ./wasm/...
//
// The program's stdout and stderr arrive unchanged on ours; page errors and console warnings
// go to stderr. The page is served from 127.0.0.1 (a secure context, so WebGPU exists), and
// it also serves the current directory under /pkg/ and the module root under /repo/, so a
// test can fetch its testdata (the browser has no file system) and its JS modules (the
// engine's replayer, web/cogvlm-replay.js: wasm/kernels/kernelstest imports it and hands it
// to the kernels, as the app's worker hands it to the engine; the page defines no global
// for the program).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/cogvlm-web/cogvlm-web/internal/browser"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: wasmexec PROGRAM.wasm [ARGS...]")
		os.Exit(2)
	}
	code, err := run(os.Args[1], os.Args[2:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasmexec:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// page loads wasm_exec.js, routes the program's writes to the runner through the
// __wasmWrite binding (ordered with the exit message, so no output is lost) and runs it.
const page = `<!doctype html><meta charset="utf-8"><title>wasmexec</title>
<script src="/wasm_exec.js"></script>
<script type="module">
const send = (fd, data) => globalThis.__wasmWrite(JSON.stringify([fd, data]));
const decoders = {1: new TextDecoder(), 2: new TextDecoder()};
globalThis.fs.writeSync = (fd, buf) => {
  send(fd, (decoders[fd] || decoders[2]).decode(buf, {stream: true}));
  return buf.length;
};
addEventListener('unhandledrejection', (e) => send(2, 'wasmexec: unhandled rejection: ' + (e.reason && e.reason.stack || e.reason) + '\n'));
try {
  const cfg = await (await fetch('/config.json')).json();
  const go = new Go();
  go.argv = cfg.argv;
  go.env = cfg.env;
  go.exit = (code) => send(-1, code);
  const { instance } = await WebAssembly.instantiateStreaming(fetch('/program.wasm'), go.importObject);
  await go.run(instance);
} catch (e) {
  send(2, 'wasmexec: ' + (e && e.stack || e) + '\n');
  send(-1, 1);
}
</script>`

func run(program string, args []string, stdout, stderr io.Writer) (int, error) {
	wasmExec := filepath.Join(goroot(), "lib", "wasm", "wasm_exec.js")
	if _, err := os.Stat(wasmExec); err != nil {
		wasmExec = filepath.Join(goroot(), "misc", "wasm", "wasm_exec.js") // Go before 1.24
	}
	cwd, err := os.Getwd()
	if err != nil {
		return 1, err
	}
	cfg, err := json.Marshal(map[string]any{
		"argv": append([]string{filepath.Base(program)}, args...),
		"env":  forwardedEnv(),
	})
	if err != nil {
		return 1, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/config.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(cfg)
	})
	mux.HandleFunc("/wasm_exec.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, wasmExec) })
	mux.HandleFunc("/program.wasm", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/wasm")
		http.ServeFile(w, r, program)
	})
	mux.Handle("/pkg/", http.StripPrefix("/pkg/", http.FileServer(http.Dir(cwd))))
	if root := moduleRoot(cwd); root != "" {
		mux.Handle("/repo/", http.StripPrefix("/repo/", http.FileServer(http.Dir(root))))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 1, err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout(args))
	defer cancel()
	var chromeLog io.Writer
	if os.Getenv("WASMEXEC_CHROME_LOG") != "" {
		chromeLog = stderr
	}
	bctx, bcancel, err := browser.Start(ctx, browser.Options{Log: chromeLog})
	if err != nil {
		return 1, err
	}
	defer bcancel()

	// Subscribe before navigating so that nothing the page says is lost. Bindings arrive
	// in call order on one iterator: the exit message comes after every write.
	writes := chromedp.Events(bctx, runtime.BindingCalled)
	console := chromedp.Console(bctx)
	var mu sync.Mutex // serializes console lines with program output on stderr
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleWarning && m.Type != chromedp.ConsoleError && !m.IsException() {
				continue
			}
			mu.Lock()
			fmt.Fprintf(stderr, "console.%s: %s\n", m.Type, m.Text)
			mu.Unlock()
		}
	}()
	if err := chromedp.Do(bctx,
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, runtime.AddBinding, runtime.AddBindingParams{Name: "__wasmWrite"})
			return err
		}),
		chromedp.Navigate("http://"+ln.Addr().String()+"/"),
	); err != nil {
		return 1, fmt.Errorf("load page: %w", err)
	}
	for ev, err := range writes {
		if err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return 1, fmt.Errorf("%s did not exit within %s", filepath.Base(program), timeout(args))
			}
			return 1, err
		}
		if ev.Name != "__wasmWrite" {
			continue
		}
		var m [2]json.RawMessage
		if err := json.Unmarshal([]byte(ev.Payload), &m); err != nil {
			return 1, fmt.Errorf("bad message from page: %v", err)
		}
		var fd int
		json.Unmarshal(m[0], &fd)
		if fd == -1 {
			var code int
			json.Unmarshal(m[1], &code)
			return code, nil
		}
		var text string
		json.Unmarshal(m[1], &text)
		mu.Lock()
		if fd == 1 {
			io.WriteString(stdout, text)
		} else {
			io.WriteString(stderr, text)
		}
		mu.Unlock()
	}
	return 1, fmt.Errorf("page closed before %s exited", filepath.Base(program))
}

// timeout is the program's own -test.timeout plus a minute for the browser, or 30 minutes.
func timeout(args []string) time.Duration {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "-test.timeout="); ok {
			if d, err := time.ParseDuration(v); err == nil && d > 0 {
				return d + time.Minute
			}
		}
	}
	return 30 * time.Minute
}

// forwardedEnv passes the variables a test may look at (CI, and our own COGVLM_*), never
// the whole environment.
func forwardedEnv() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if k == "CI" || strings.HasPrefix(k, "COGVLM_") || k == "GODEBUG" {
			env[k] = v
		}
	}
	return env
}

func goroot() string {
	if r := os.Getenv("GOROOT"); r != "" {
		return r
	}
	return goruntime.GOROOT()
}

func moduleRoot(dir string) string {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
