// Package browser starts headless Chromium with WebGPU on SwiftShader, the way every
// browser test of this project runs it (flags from DESIGN.md), and finds the binary.
//
// It is test tooling: the browser test runner (internal/cmd/wasmexec) and the page's
// end-to-end tests use it. Nothing in the product imports it.
package browser

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/chromedp/chromedp"
)

// ErrNoChromium says that no Chromium binary was found; the message says what to install.
var ErrNoChromium = errors.New("chromium not found: install Debian's chromium package (apt-get install chromium) or set CHROMIUM=/path/to/chromium")

// Find returns the Chromium binary: $CHROMIUM if set, else the first of the usual names on PATH.
func Find() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoChromium
}

// Options tune one browser instance.
type Options struct {
	// UserDataDir is the profile folder. Empty means a fresh temporary one, removed on close.
	// Tests that reload a page from its stored state (offline runs) pass the same folder twice.
	UserDataDir string
	// Log receives Chromium's own stderr (not the page console). Nil discards it.
	Log io.Writer
	// WindowSize in CSS pixels; zero means 1280×900.
	Width, Height int
}

// Start launches headless Chromium with WebGPU on SwiftShader and returns a browser
// context (first tab) and its cancel function, which closes the browser and removes a
// temporary profile.
func Start(parent context.Context, o Options) (context.Context, context.CancelFunc, error) {
	bin, err := Find()
	if err != nil {
		return nil, nil, err
	}
	dir, cleanup := o.UserDataDir, func() {}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "cogvlm-chromium-")
		if err != nil {
			return nil, nil, fmt.Errorf("chromium profile: %w", err)
		}
		dir, cleanup = tmp, func() { os.RemoveAll(tmp) }
	}
	w, h := o.Width, o.Height
	if w == 0 || h == 0 {
		w, h = 1280, 900
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox,
		chromedp.WindowSize(w, h),
		// headless=new keeps the full browser (workers, WebGPU, service workers).
		chromedp.Flag("headless", "new"),
		chromedp.Flag("enable-unsafe-webgpu", true),
		chromedp.Flag("use-webgpu-adapter", "swiftshader"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		// The closed network of CI machines refuses every outside host; never try one.
		chromedp.Flag("disable-domain-reliability", true),
	)
	if o.Log != nil {
		opts = append(opts, chromedp.CombinedOutput(o.Log))
	}
	actx, acancel := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancel()
		acancel()
		cleanup()
		return nil, nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return ctx, func() { cancel(); acancel(); cleanup() }, nil
}
