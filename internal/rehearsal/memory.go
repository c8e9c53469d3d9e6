package rehearsal

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cogvlm-web/cogvlm-web/internal/browser"
)

// LoadMemoryOptions say which package LoadMemory loads: Package is its folder's name under
// Models, served with the app in Web by the server binary Server.
type LoadMemoryOptions struct {
	Server, Web, Models, Package string
	// Timeline keeps every reading (four a second) in the result.
	Timeline bool
	Log      func(format string, args ...any)
}

// LoadMemory is the browser's memory around one load of a package in the real page: at
// rest with the page open (Idle), at the peak while the package downloads, is stored and
// goes to the GPU (Peak, with its breakdown by kind of process), and a few seconds after
// the load has finished (Loaded), against the load's memory plan.
type LoadMemory struct {
	Idle        int64
	IdleKinds   Breakdown
	Peak        Breakdown
	Loaded      Breakdown
	LoadSeconds float64
	// The memory plan (its total and its text) and the package's bytes (its shards, which
	// the load fills; the plan's KV cache and activations are allocated but not written
	// until a question, the vision tower's at the first image).
	PlanBytes, PackageBytes int64
	Plan                    string
	Timeline                []PSSSample
}

// Above is the peak's excess over the idle browser.
func (m *LoadMemory) Above() int64 { return m.Peak.Total() - m.Idle }

// MeasureLoadMemory starts the server and a fresh headless Chromium, opens the page, loads
// the package through the JS API (from the network into an empty browser storage), and
// disposes of it, sampling the browser's PSS by kind of process all along.
func MeasureLoadMemory(o LoadMemoryOptions) (*LoadMemory, error) {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	srv, err := StartServer(o.Server, o.Models, o.Web)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	bctx, bcancel, err := browser.Start(ctx, browser.Options{})
	if err != nil {
		return nil, err
	}
	defer bcancel()
	if _, err := chromedp.Run(bctx, chromedp.Navigate(srv.URL)); err != nil {
		return nil, fmt.Errorf("the page: %v", err)
	}
	// The page's own start (the service worker, the app's modules) settles first.
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`navigator.serviceWorker.ready.then(() => true)`, chromedp.EvalAwaitPromise)); err != nil {
		return nil, fmt.Errorf("service worker: %v", err)
	}
	m := &LoadMemory{Idle: idlePSS(srv.Pid())}
	m.IdleKinds = descendantsPSS(os.Getpid(), srv.Pid())
	sampler := startPSSSampler(srv.Pid(), o.Timeline)
	defer sampler.stop()
	manifestURL := srv.URL + "models/" + o.Package + "/manifest.json"
	logf("idle browser %.3f GB: %s; loading %s", gb(m.Idle), m.IdleKinds, manifestURL)
	type loaded struct {
		LoadMs float64 `json:"loadMs"`
		Info   struct {
			Memory      string  `json:"memory"`
			MemoryBytes float64 `json:"memoryBytes"`
			TotalBytes  float64 `json:"totalBytes"`
		} `json:"info"`
	}
	res, err := chromedp.Run(bctx, chromedp.Evaluate[loaded](fmt.Sprintf(`(async () => {
		const { CogVLM } = await import('/cogvlm.js');
		const t0 = performance.now();
		const model = await CogVLM.load(%q);
		globalThis.cogvlmMemoryModel = model;
		return { loadMs: performance.now() - t0, info: model.info };
	})()`, manifestURL), chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, fmt.Errorf("load %s: %v", manifestURL, err)
	}
	m.Peak = sampler.phase()
	m.LoadSeconds = res.LoadMs / 1000
	m.Plan, m.PlanBytes = res.Info.Memory, int64(res.Info.MemoryBytes)
	m.PackageBytes = int64(res.Info.TotalBytes)
	time.Sleep(3 * time.Second)
	m.Loaded = descendantsPSS(os.Getpid(), srv.Pid())
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[any](`globalThis.cogvlmMemoryModel.dispose().then(() => null)`, chromedp.EvalAwaitPromise)); err != nil {
		return nil, fmt.Errorf("dispose: %v", err)
	}
	if p := sampler.phase(); p.Total() > m.Peak.Total() {
		m.Peak = p // the peak came after the load resolved
	}
	sampler.stop()
	m.Timeline = sampler.readings()
	logf("load %.1f s; peak %.3f GB (%.3f above idle): %s; 3 s after the load %.3f GB: %s; plan %s",
		m.LoadSeconds, gb(m.Peak.Total()), gb(m.Above()), m.Peak, gb(m.Loaded.Total()), m.Loaded, m.Plan)
	return m, nil
}
