// Package rehearsal is the full-size rehearsal (bench/fullsize.sh, and at one layer the
// real-width test of internal/e2e): a random-weights
// checkpoint at a published preset's real widths goes through every step a user's copy of
// CogVLM goes through — demo-model → convert (q4) → the server → the real page's JS API in
// headless Chromium (download, verify, store, upload, answer) → the same answer from the
// CPU reference → a reload with the server stopped → deleting the stored copy — and each
// step is measured into a Report. Run's error names the step that failed.
package rehearsal

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cogvlm-web/cogvlm-web/internal/browser"
)

// Options choose what is rehearsed. Repo is the repository root (built from); the zero
// value of every other field but Preset and Tokens means the default.
type Options struct {
	Repo                string
	Preset              string
	Layers, VisionLayer int // 0: the preset's full depth
	Tokens              int
	Image, Work, Query  string
	Template            string
	Keep                bool
	// Log receives progress lines (nil: discarded).
	Log func(format string, args ...any)
}

// DefaultQuery is the text question when Options.Query is empty.
const DefaultQuery = "What is the capital of France?"

// The image question and its follow-up.
const (
	ImageQuery    = "What is in this image?"
	FollowupQuery = "And the colours?"
)

// Report is what a rehearsal measured: bench/fullsize.sh prints it as its last line.
type Report struct {
	Preset       string `json:"preset"`
	Layers       int    `json:"layers,omitempty"`
	VisionLayers int    `json:"vision_layers,omitempty"`
	Tokens       int    `json:"tokens"`

	CheckpointBytes  int64   `json:"checkpoint_bytes"`
	DemoModelSeconds float64 `json:"demo_model_s"`
	DemoModelPeakRSS int64   `json:"demo_model_peak_rss"`
	PackageBytes     int64   `json:"package_bytes"`
	PackageShards    int     `json:"package_shards"`
	ConvertSeconds   float64 `json:"convert_s"`
	ConvertPeakRSS   int64   `json:"convert_peak_rss"`
	LoadSeconds      float64 `json:"load_s"`
	BrowserPeakPSS   int64   `json:"browser_peak_pss"`
	// The same peak per phase: the first load and its answers, then the offline reload and
	// its answer (which tells a model held twice from one session outliving its dispose).
	BrowserPeakPSSOnline  int64 `json:"browser_peak_pss_online"`
	BrowserPeakPSSOffline int64 `json:"browser_peak_pss_offline"`
	// Where that memory is: the breakdown by kind of process at each phase's peak (GPU
	// process, renderer, browser, utility processes), and each kind's own peak over the run.
	BrowserPSSAtPeakOnline  Breakdown `json:"browser_pss_at_peak_online"`
	BrowserPSSAtPeakOffline Breakdown `json:"browser_pss_at_peak_offline"`
	BrowserPeakPSSByKind    Breakdown `json:"browser_peak_pss_by_kind"`
	// BrowserIdlePSS is the browser with the page open, before the first load.
	BrowserIdlePSS    int64  `json:"browser_idle_pss"`
	StorageBytes      int64  `json:"storage_bytes_after_load"`
	WASMHeapBytes     int64  `json:"wasm_heap_bytes"`
	MemoryPlan        string `json:"memory_plan"`
	MemoryPlanBytes   int64  `json:"memory_plan_bytes"`
	AdapterMaxBuffer  int64  `json:"adapter_max_buffer_size"`
	AdapterMaxBinding int64  `json:"adapter_max_storage_binding"`

	PageTextSecondsPerToken float64 `json:"page_text_s_per_token"`
	PageTextPrefillSeconds  float64 `json:"page_text_prefill_s"`
	CLITextSecondsPerToken  float64 `json:"cli_text_s_per_token"`
	CLITextPrefillSeconds   float64 `json:"cli_text_prefill_s"`
	CLILoadSeconds          float64 `json:"cli_load_s"`
	CLIPeakRSS              int64   `json:"cli_peak_rss"`
	PageImageVisionSeconds  float64 `json:"page_image_vision_s,omitempty"`
	CLIImageVisionSeconds   float64 `json:"cli_image_vision_s,omitempty"`

	// With an image, a follow-up (FollowupQuery, the image question as its history) reuses
	// the conversation's KV cache: its time to the first token next to the image
	// question's, in the page and in `cogvlm chat`, as a ratio of the same run.
	PageImageFirstTokenSeconds    float64 `json:"page_image_first_token_s,omitempty"`
	PageFollowupFirstTokenSeconds float64 `json:"page_followup_first_token_s,omitempty"`
	PageFollowupReusedTokens      int     `json:"page_followup_reused_tokens,omitempty"`
	PageFollowupPrefillTokens     int     `json:"page_followup_prefill_tokens,omitempty"`
	PageFollowupFirstTokenRatio   float64 `json:"page_followup_first_token_ratio,omitempty"`
	// the prefills alone (the image question's first token also waits for the vision
	// tower, and on a first use for the pipelines' compilation)
	PageImagePrefillSeconds      float64 `json:"page_image_prefill_s,omitempty"`
	PageFollowupPrefillSeconds   float64 `json:"page_followup_prefill_s,omitempty"`
	CLIImageFirstTokenSeconds    float64 `json:"cli_image_first_token_s,omitempty"`
	CLIFollowupFirstTokenSeconds float64 `json:"cli_followup_first_token_s,omitempty"`
	CLIFollowupFirstTokenRatio   float64 `json:"cli_followup_first_token_ratio,omitempty"`

	// ProgressMaxGapSeconds is the longest wait between two progress events of the load
	// (or the last one and the end): a stalled progress bar shows here.
	ProgressMaxGapSeconds float64    `json:"progress_max_gap_s"`
	Progress              []Progress `json:"-"`

	OfflineLoadSeconds float64 `json:"offline_load_s"`
	StorageBytesFreed  int64   `json:"storage_bytes_freed"`

	TextIDs      []int  `json:"text_ids"`
	ImageIDs     []int  `json:"image_ids,omitempty"`
	FollowupIDs  []int  `json:"followup_ids,omitempty"`
	TokensEqual  bool   `json:"tokens_equal"`
	OfflineEqual bool   `json:"offline_equal"`
	Failed       string `json:"failed,omitempty"`
}

// stepError names the step that failed.
func stepError(step string, err error) error { return fmt.Errorf("step %s: %w", step, err) }

// Run rehearses o into r (filled as far as it got), and names the failed step.
func Run(o Options, r *Report) error {
	r.Preset, r.Layers, r.VisionLayers, r.Tokens = o.Preset, o.Layers, o.VisionLayer, o.Tokens
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	repo := o.Repo
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		return fmt.Errorf("%s is not the repository root: %v", repo, err)
	}
	if o.Tokens < 1 {
		return fmt.Errorf("tokens %d: want at least 1", o.Tokens)
	}
	if o.Query == "" {
		o.Query = DefaultQuery
	}
	work := o.Work
	var err error
	if work == "" {
		if work, err = os.MkdirTemp("", "cogvlm-fullsize-"); err != nil {
			return err
		}
		if !o.Keep {
			defer os.RemoveAll(work)
		}
	}
	bin := filepath.Join(work, "bin")
	web := filepath.Join(work, "web")
	models := filepath.Join(work, "models")
	hf := filepath.Join(work, "hf")
	name := "fullsize"
	pkgDir := filepath.Join(models, name)

	logf("building the CLI, the server and the app into %s", work)
	if err := build(repo, bin, web); err != nil {
		return stepError("build", err)
	}
	cli := filepath.Join(bin, "cogvlm")

	// demo-model → convert
	os.RemoveAll(hf)
	args := []string{"demo-model", "--out", hf}
	if o.Preset != "" {
		args = append(args, "--preset", o.Preset)
	}
	if o.Layers > 0 {
		args = append(args, "--layers", strconv.Itoa(o.Layers))
	}
	if o.VisionLayer > 0 {
		args = append(args, "--vision-layers", strconv.Itoa(o.VisionLayer))
	}
	logf("demo-model: %s", strings.Join(args[1:], " "))
	res, err := measure(cli, args...)
	if err != nil {
		return stepError("demo-model", err)
	}
	r.DemoModelSeconds, r.DemoModelPeakRSS = res.seconds, res.peakRSS
	r.CheckpointBytes = dirBytes(hf)
	logf("demo-model: %.2f GB in %.1f s (%.2f GB/s), peak RSS %.0f MB", gb(r.CheckpointBytes), res.seconds, gb(r.CheckpointBytes)/res.seconds, mb(res.peakRSS))

	os.RemoveAll(pkgDir)
	if err := os.MkdirAll(models, 0o755); err != nil {
		return err
	}
	logf("convert (q4)")
	if res, err = measure(cli, "convert", "--in", hf, "--out", pkgDir, "--quant", "q4"); err != nil {
		return stepError("convert", err)
	}
	r.ConvertSeconds, r.ConvertPeakRSS = res.seconds, res.peakRSS
	r.PackageBytes = dirBytes(pkgDir)
	if m, err := readManifestShards(pkgDir); err == nil {
		r.PackageShards = m
	}
	logf("convert: %.2f GB package in %d shards, %.1f s, peak RSS %.0f MB", gb(r.PackageBytes), r.PackageShards, res.seconds, mb(res.peakRSS))
	if !o.Keep && o.Work == "" {
		os.RemoveAll(hf) // the browser's stored copy needs the disk more
	}

	// the CPU reference's answers
	text := question{Query: o.Query, Template: o.Template, Tokens: o.Tokens}
	logf("the CPU reference answers the text question")
	cliText, err := cliAnswer(cli, pkgDir, text, r)
	if err != nil {
		return stepError("cli text question", err)
	}
	r.TextIDs = cliText.GeneratedIDs
	var cliImage, cliFollowup *cliResult
	if o.Image != "" {
		img := text
		img.Image = o.Image
		logf("the CPU reference answers the image question and a follow-up (cogvlm chat)")
		answers, err := cliChat(cli, pkgDir, img, ImageQuery, FollowupQuery)
		if err != nil {
			return stepError("cli image question", err)
		}
		cliImage, cliFollowup = answers[0], answers[1]
		r.ImageIDs, r.FollowupIDs = cliImage.GeneratedIDs, cliFollowup.GeneratedIDs
		r.CLIImageVisionSeconds = cliImage.Stats.VisionMs / 1000
		r.CLIImageFirstTokenSeconds = cliImage.Stats.FirstTokenMs / 1000
		r.CLIFollowupFirstTokenSeconds = cliFollowup.Stats.FirstTokenMs / 1000
		r.CLIFollowupFirstTokenRatio = cliFollowup.Stats.FirstTokenMs / cliImage.Stats.FirstTokenMs
	}

	// the server and the page
	srv, err := StartServer(filepath.Join(bin, "server"), models, web)
	if err != nil {
		return stepError("server", err)
	}
	defer srv.Stop()
	profile := filepath.Join(work, "chromium-profile")
	os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Hour)
	defer cancel()
	bctx, bcancel, err := browser.Start(ctx, browser.Options{UserDataDir: profile})
	if err != nil {
		return stepError("browser", err)
	}
	defer bcancel()
	sampler := startPSSSampler(srv.Pid(), false)
	defer sampler.stop()

	manifestURL := srv.URL + "models/" + name + "/manifest.json"
	if _, err := chromedp.Run(bctx, chromedp.Navigate(srv.URL)); err != nil {
		return stepError("page", err)
	}
	r.BrowserIdlePSS = idlePSS(srv.Pid())
	logf("the page loads the package through the JS API (%s)", manifestURL)
	page, err := pageRun(bctx, manifestURL, text, o.Image)
	if err != nil {
		return stepError("page load and answer", err)
	}
	r.BrowserPSSAtPeakOnline = sampler.phase()
	r.BrowserPeakPSSOnline = r.BrowserPSSAtPeakOnline.Total()
	logf("browser PSS at the online peak: %.2f GB: %s", gb(r.BrowserPeakPSSOnline), r.BrowserPSSAtPeakOnline)
	r.LoadSeconds = page.LoadMs / 1000
	r.Progress = page.Progress
	r.ProgressMaxGapSeconds = maxGap(page.Progress, page.LoadMs) / 1000
	r.StorageBytes = page.StorageAfterLoad
	r.WASMHeapBytes = page.WASMMemoryBytes
	r.MemoryPlan, r.MemoryPlanBytes = page.Info.Memory, int64(page.Info.MemoryBytes)
	r.AdapterMaxBuffer, r.AdapterMaxBinding = page.Adapter.MaxBufferSize, page.Adapter.MaxStorageBufferBindingSize
	r.PageTextPrefillSeconds = page.Text.Stats.PrefillMs / 1000
	r.PageTextSecondsPerToken = perToken(page.Text.Stats.DecodeMs, page.Text.Stats.DecodeTokens)
	r.TokensEqual = slices.Equal(page.Text.TokenIDs, cliText.GeneratedIDs)
	if !r.TokensEqual {
		logf("text tokens differ: page %v, CPU reference %v", page.Text.TokenIDs, cliText.GeneratedIDs)
	}
	if cliImage != nil {
		r.PageImageVisionSeconds = page.Image.Stats.VisionMs / 1000
		if !slices.Equal(page.Image.TokenIDs, cliImage.GeneratedIDs) {
			logf("image tokens differ: page %v, CPU reference %v", page.Image.TokenIDs, cliImage.GeneratedIDs)
			r.TokensEqual = false
		}
		if !slices.Equal(page.Followup.TokenIDs, cliFollowup.GeneratedIDs) {
			logf("follow-up tokens differ: page %v, CPU reference %v", page.Followup.TokenIDs, cliFollowup.GeneratedIDs)
			r.TokensEqual = false
		}
		r.PageImageFirstTokenSeconds = page.Image.Stats.FirstTokenMs / 1000
		r.PageFollowupFirstTokenSeconds = page.Followup.Stats.FirstTokenMs / 1000
		r.PageFollowupReusedTokens = page.Followup.Stats.ReusedTokens
		r.PageFollowupPrefillTokens = page.Followup.Stats.PrefillTokens
		r.PageFollowupFirstTokenRatio = page.Followup.Stats.FirstTokenMs / page.Image.Stats.FirstTokenMs
		r.PageImagePrefillSeconds = page.Image.Stats.PrefillMs / 1000
		r.PageFollowupPrefillSeconds = page.Followup.Stats.PrefillMs / 1000
		logf("follow-up: first token after %.3f s reusing %d tokens (prefilling %d), the image question's after %.3f s: %.4f of it (CPU reference: %.4f)",
			r.PageFollowupFirstTokenSeconds, r.PageFollowupReusedTokens, r.PageFollowupPrefillTokens, r.PageImageFirstTokenSeconds,
			r.PageFollowupFirstTokenRatio, r.CLIFollowupFirstTokenRatio)
	}
	logf("page: load %.1f s, text %v (CPU reference %v), %.2f s/token (CPU reference %.2f), WASM heap %.0f MB, stored %.2f GB",
		r.LoadSeconds, page.Text.TokenIDs, cliText.GeneratedIDs, r.PageTextSecondsPerToken, r.CLITextSecondsPerToken, mb(r.WASMHeapBytes), gb(r.StorageBytes))

	// offline: the server stops, the page reloads from its service worker and the stored copy
	logf("offline: reload with the server stopped")
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`navigator.serviceWorker.ready.then(() => true)`, chromedp.EvalAwaitPromise)); err != nil {
		return stepError("service worker", err)
	}
	srv.Stop()
	if _, err := chromedp.Run(bctx, chromedp.Navigate(srv.URL)); err != nil {
		return stepError("offline page", err)
	}
	offline, err := pageRun(bctx, manifestURL, text, "")
	if err != nil {
		return stepError("offline load and answer", err)
	}
	r.BrowserPSSAtPeakOffline = sampler.phase()
	r.BrowserPeakPSSOffline = r.BrowserPSSAtPeakOffline.Total()
	logf("browser PSS at the offline peak: %.2f GB: %s", gb(r.BrowserPeakPSSOffline), r.BrowserPSSAtPeakOffline)
	r.OfflineLoadSeconds = offline.LoadMs / 1000
	r.OfflineEqual = offline.Info.Source == "storage" && slices.Equal(offline.Text.TokenIDs, page.Text.TokenIDs)
	if !r.OfflineEqual {
		logf("offline: source %q, tokens %v (online %v)", offline.Info.Source, offline.Text.TokenIDs, page.Text.TokenIDs)
	}

	// deleting the stored copy frees its bytes
	// The browser accounts a deleted cache's bytes lazily: poll the estimate for a while.
	freed, err := chromedp.Run(bctx, chromedp.Evaluate[float64](fmt.Sprintf(`(async () => {
		const { deleteStoredPackage, storedPackages } = await import('/cogvlm.js');
		const before = (await navigator.storage.estimate()).usage;
		if (!await deleteStoredPackage(%q)) throw new Error('no stored copy to delete');
		if ((await storedPackages()).some((p) => p.manifestURL === %q)) throw new Error('the stored copy is still listed');
		let freed = 0;
		for (let i = 0; i < 120 && freed < %d; i++) {
			freed = before - (await navigator.storage.estimate()).usage;
			if (freed < %d) await new Promise((r) => setTimeout(r, 500));
		}
		return freed;
	})()`, manifestURL, manifestURL, r.PackageBytes*9/10, r.PackageBytes*9/10), chromedp.EvalAwaitPromise))
	if err != nil {
		return stepError("delete stored copy", err)
	}
	r.StorageBytesFreed = int64(freed)
	atPeak, byKind := sampler.stop()
	r.BrowserPeakPSS, r.BrowserPeakPSSByKind = atPeak.Total(), byKind
	if r.StorageBytesFreed < r.PackageBytes*9/10 {
		return stepError("delete stored copy", fmt.Errorf("freed %d bytes of a %d-byte package", r.StorageBytesFreed, r.PackageBytes))
	}
	logf("offline load %.1f s, equal %v; deleting freed %.2f GB; browser peak PSS %.2f GB (online %.2f, offline %.2f)",
		r.OfflineLoadSeconds, r.OfflineEqual, gb(r.StorageBytesFreed), gb(r.BrowserPeakPSS), gb(r.BrowserPeakPSSOnline), gb(r.BrowserPeakPSSOffline))
	return nil
}

// maxGap is the longest time between consecutive events, counting the load's start and end.
func maxGap(events []Progress, end float64) float64 {
	last, gap := 0.0, 0.0
	for _, e := range events {
		gap = max(gap, e.T-last)
		last = e.T
	}
	return max(gap, end-last)
}

func gb(n int64) float64 { return float64(n) / 1e9 }
func mb(n int64) float64 { return float64(n) / 1e6 }

func perToken(ms float64, tokens int) float64 {
	if tokens == 0 {
		return 0
	}
	return ms / 1000 / float64(tokens)
}

// build makes the CLI, the server and the app from this tree.
func build(repo, bin, web string) error {
	if err := GoBuild(repo, nil, filepath.Join(bin, "cogvlm"), "./cmd/cogvlm"); err != nil {
		return err
	}
	if err := GoBuild(repo, nil, filepath.Join(bin, "server"), "./server"); err != nil {
		return err
	}
	return BuildApp(repo, web)
}

// BuildApp makes the page in web from the repository root repo: the files of repo/web but
// its build outputs, Go's wasm_exec.js and a fresh cogvlm.wasm built as ./build.sh builds it.
func BuildApp(repo, web string) error {
	if err := CopyApp(filepath.Join(repo, "web"), web); err != nil {
		return err
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %v", err)
	}
	if err := CopyFile(filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"), filepath.Join(web, "wasm_exec.js")); err != nil {
		return err
	}
	return GoBuild(repo, []string{"GOOS=js", "GOARCH=wasm"}, filepath.Join(web, "cogvlm.wasm"), "-trimpath", "-tags=cogvlm_release", "-ldflags=-s -w", "./wasm")
}

// GoBuild runs `go build -o out args…` in the repository root repo, with env added to the
// environment.
func GoBuild(repo string, env []string, out string, args ...string) error {
	cmd := exec.Command("go", append([]string{"build", "-o", out}, args...)...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// CopyApp copies the files of a folder (not its subfolders) but the app's build outputs
// (cogvlm.wasm, convert.wasm, wasm_exec.js), which are made fresh instead: a stale one
// left in web/ by ./build.sh must not stand in for this tree's.
func CopyApp(from, to string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		switch e.Name() {
		case "cogvlm.wasm", "convert.wasm", "wasm_exec.js":
			continue
		}
		if e.IsDir() {
			continue
		}
		if err := CopyFile(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// CopyFile copies a file, making to's folder.
func CopyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func readManifestShards(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return 0, err
	}
	var m struct {
		Shards []json.RawMessage `json:"shards"`
	}
	err = json.Unmarshal(b, &m)
	return len(m.Shards), err
}

// measured is a finished child process: its wall time and peak resident memory.
type measured struct {
	seconds        float64
	peakRSS        int64
	stdout, stderr string
}

func measure(name string, args ...string) (measured, error) {
	cmd := exec.Command(name, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	m := measured{seconds: time.Since(start).Seconds(), stdout: stdout.String(), stderr: stderr.String()}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			m.peakRSS = ru.Maxrss * 1024 // kilobytes on Linux
		}
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return m, fmt.Errorf("%s %s: %v: %s", filepath.Base(name), args[0], err, msg)
	}
	return m, nil
}

type question struct {
	Query, Template, Image string
	Tokens                 int
}

type cliResult struct {
	InputIDs     []int    `json:"input_ids"`
	GeneratedIDs []int    `json:"generated_ids"`
	Text         string   `json:"generated_text"`
	Stats        cliStats `json:"stats"`
}

// cliStats is generate's (and chat's) --json "stats: {…}" line on stderr.
type cliStats struct {
	LoadMs        float64 `json:"load_ms"`
	VisionMs      float64 `json:"vision_ms"`
	PrefillMs     float64 `json:"prefill_ms"`
	PrefillTokens int     `json:"prefill_tokens"`
	DecodeMs      float64 `json:"decode_ms"`
	DecodeTokens  int     `json:"decode_tokens"`
	ReusedTokens  int     `json:"reused_tokens"`
	FirstTokenMs  float64 `json:"first_token_ms"`
}

// cliChat asks the queries in turn in one `cogvlm chat --json` (with q's image, template
// and tokens), each with the earlier ones as its history.
func cliChat(cli, pkgDir string, q question, queries ...string) ([]*cliResult, error) {
	args := []string{"chat", "--model", pkgDir, "--temperature", "0", "--max-new-tokens", strconv.Itoa(q.Tokens), "--json"}
	if q.Template != "" {
		args = append(args, "--template", q.Template)
	}
	if q.Image != "" {
		args = append(args, "--image", q.Image)
	}
	cmd := exec.Command(cli, args...)
	cmd.Stdin = strings.NewReader(strings.Join(queries, "\n") + "\n")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("cogvlm chat: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var answers []*cliResult
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var a cliResult
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			return nil, fmt.Errorf("cogvlm chat --json: %v", err)
		}
		answers = append(answers, &a)
	}
	i := 0
	for _, line := range strings.Split(stderr.String(), "\n") {
		if s, ok := strings.CutPrefix(line, "stats: "); ok && i < len(answers) {
			if err := json.Unmarshal([]byte(s), &answers[i].Stats); err != nil {
				return nil, fmt.Errorf("cogvlm chat --json: stats: %v", err)
			}
			i++
		}
	}
	if len(answers) != len(queries) || i != len(answers) {
		return nil, fmt.Errorf("cogvlm chat --json: %d answers and %d stats lines for %d questions", len(answers), i, len(queries))
	}
	return answers, nil
}

// cliAnswer runs `cogvlm generate --json` greedily; r, when given, gets its figures.
func cliAnswer(cli, pkgDir string, q question, r *Report) (*cliResult, error) {
	args := []string{"generate", "--model", pkgDir, "--query", q.Query, "--temperature", "0",
		"--max-new-tokens", strconv.Itoa(q.Tokens), "--json"}
	if q.Template != "" {
		args = append(args, "--template", q.Template)
	}
	if q.Image != "" {
		args = append(args, "--image", q.Image)
	}
	m, err := measure(cli, args...)
	if err != nil {
		return nil, err
	}
	out := strings.TrimSpace(m.stdout)
	var res cliResult
	if err := json.Unmarshal([]byte(out[strings.LastIndexByte(out, '\n')+1:]), &res); err != nil {
		return nil, fmt.Errorf("generate --json: %v", err)
	}
	for _, line := range strings.Split(m.stderr, "\n") {
		if s, ok := strings.CutPrefix(line, "stats: "); ok {
			if err := json.Unmarshal([]byte(s), &res.Stats); err != nil {
				return nil, fmt.Errorf("generate --json: stats: %v", err)
			}
		}
	}
	if r != nil {
		r.CLIPeakRSS = m.peakRSS
		r.CLILoadSeconds = res.Stats.LoadMs / 1000
		r.CLITextPrefillSeconds = res.Stats.PrefillMs / 1000
		r.CLITextSecondsPerToken = perToken(res.Stats.DecodeMs, res.Stats.DecodeTokens)
	}
	return &res, nil
}

// Server is the real server binary, started on a free port of 127.0.0.1.
type Server struct {
	cmd  *exec.Cmd
	URL  string // "http://127.0.0.1:PORT/"
	done chan struct{}
}

// StartServer starts bin serving models and the app in web (with more flags if given), and
// waits for its "serving URL (models: DIR)" line.
func StartServer(bin, models, web string, flags ...string) (*Server, error) {
	cmd := exec.Command(bin, append([]string{"--addr", "127.0.0.1:0", "--models", models, "--web", web}, flags...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the server: %v", err)
	}
	s := &Server{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lines:
		rest, ok := strings.CutPrefix(line, "serving ")
		u, _, _ := strings.Cut(rest, " ")
		if _, err := url.Parse(u); !ok || err != nil || !strings.HasPrefix(u, "http://") {
			s.Stop()
			return nil, fmt.Errorf("the server said %q, want \"serving URL (models: DIR)\"", line)
		}
		s.URL = u
		return s, nil
	case <-s.done:
		return nil, errors.New("the server exited at start")
	case <-time.After(30 * time.Second):
		s.Stop()
		return nil, errors.New("the server printed nothing in 30 s")
	}
}

// Pid is the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop shuts the server down (SIGINT, as Ctrl-C) and waits until its port is closed.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// pageResult is what the page's JS API reports.
type pageResult struct {
	LoadMs           float64 `json:"loadMs"`
	StorageAfterLoad int64   `json:"storageAfterLoad"`
	WASMMemoryBytes  int64   `json:"wasmMemoryBytes"`
	Adapter          struct {
		MaxBufferSize               int64 `json:"maxBufferSize"`
		MaxStorageBufferBindingSize int64 `json:"maxStorageBufferBindingSize"`
	} `json:"adapter"`
	Info struct {
		Source      string  `json:"source"`
		Memory      string  `json:"memory"`
		MemoryBytes float64 `json:"memoryBytes"`
	} `json:"info"`
	Text, Image, Followup pageAnswer
	Progress              []Progress `json:"progress"`
}

// Progress is one of CogVLM.load's progress events, with its time since the load began.
type Progress struct {
	T           float64 `json:"t"` // ms
	Phase       string  `json:"phase"`
	LoadedBytes float64 `json:"loadedBytes"`
	TotalBytes  float64 `json:"totalBytes"`
	Text        string  `json:"text"`
}

type pageAnswer struct {
	TokenIDs []int     `json:"tokenIds"`
	Text     string    `json:"text"`
	Stats    PageStats `json:"stats"`
}

// PageStats are the JS API's generate stats.
type PageStats struct {
	VisionMs      float64 `json:"visionMs"`
	PrefillMs     float64 `json:"prefillMs"`
	PrefillTokens int     `json:"prefillTokens"`
	ReusedTokens  int     `json:"reusedTokens"`
	FirstTokenMs  float64 `json:"firstTokenMs"`
	DecodeMs      float64 `json:"decodeMs"`
	DecodeTokens  int     `json:"decodeTokens"`
}

// pageRun loads the package through the JS API in the page and asks the text question
// (and, with an image file, the image question, whose bytes go in as a Blob, and a
// follow-up about it), then disposes.
func pageRun(ctx context.Context, manifestURL string, q question, image string) (*pageResult, error) {
	opts := map[string]any{"query": q.Query, "maxNewTokens": q.Tokens, "temperature": 0}
	if q.Template != "" {
		opts["template"] = q.Template
	}
	textOpts, _ := json.Marshal(opts)
	imageJS := "null"
	if image != "" {
		b, err := os.ReadFile(image)
		if err != nil {
			return nil, err
		}
		opts["query"] = ImageQuery
		imageOpts, _ := json.Marshal(opts)
		// the image travels as a JSON array of bytes: small next to the model
		nums := make([]string, len(b))
		for i, c := range b {
			nums[i] = strconv.Itoa(int(c))
		}
		imageJS = fmt.Sprintf(`{ opts: %s, bytes: [%s], followup: %q }`, imageOpts, strings.Join(nums, ","), FollowupQuery)
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](fmt.Sprintf(`(async () => {
		const { CogVLM } = await import('/cogvlm.js');
		const adapter = await CogVLM.probe();
		const t0 = performance.now();
		const progress = [];
		const model = await CogVLM.load(%q, { onProgress: (p) => progress.push({ t: performance.now() - t0, ...p }) });
		const loadMs = performance.now() - t0;
		const storageAfterLoad = (await navigator.storage.estimate()).usage;
		const text = await model.generate(%s);
		const img = %s;
		let image = null;
		let followup = null;
		if (img) {
			const blob = new Blob([new Uint8Array(img.bytes)]);
			image = await model.generate({ ...img.opts, image: blob });
			followup = await model.generate({ ...img.opts, image: blob, query: img.followup, history: [[img.opts.query, image.text]] });
		}
		const { wasmMemoryBytes } = await model.memory();
		const info = model.info;
		await model.dispose();
		return { loadMs, storageAfterLoad, wasmMemoryBytes, adapter, info, text, image, followup, progress };
	})()`, manifestURL, textOpts, imageJS), chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, err
	}
	var r pageResult
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("the page's result: %v", err)
	}
	return &r, nil
}
