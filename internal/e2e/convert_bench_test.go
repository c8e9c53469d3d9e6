package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cogvlm-web/cogvlm-web/model/demo"
	"github.com/cogvlm-web/cogvlm-web/model/pkg"
)

// TestConvertThroughput measures the page's conversion against the CLI's on the same
// real-width checkpoint (cogvlm-chat-hf's layout, with COGVLM_CONVERT_BENCH_LAYERS decoder
// and vision layers, default 1) on this machine: the figures of bench/README.md. It runs
// only with COGVLM_CONVERT_BENCH=1 (it writes gigabytes).
func TestConvertThroughput(t *testing.T) {
	if os.Getenv("COGVLM_CONVERT_BENCH") != "1" {
		t.Skip("COGVLM_CONVERT_BENCH=1 runs it")
	}
	f := getFixture(t)
	ckpt := t.TempDir()
	if err := demo.Generate(ckpt, demo.Options{Preset: "cogvlm-chat-hf", Layers: 1, VisionLayers: 1}); err != nil {
		t.Fatal(err)
	}
	var input int64
	entries, _ := os.ReadDir(ckpt)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".safetensors") {
			fi, _ := e.Info()
			input += fi.Size()
		}
	}
	out := filepath.Join(t.TempDir(), "pkg")
	start := time.Now()
	if err := pkg.Convert(ckpt, out, pkg.ConvertOptions{}); err != nil {
		t.Fatal(err)
	}
	cli := time.Since(start)

	repo, vicuna := t.TempDir(), t.TempDir()
	for _, e := range entries {
		from := filepath.Join(ckpt, e.Name())
		switch {
		case e.Name() == "tokenizer.model":
			os.Link(from, filepath.Join(vicuna, e.Name()))
		case !strings.HasPrefix(e.Name(), "tokenizer"):
			os.Link(from, filepath.Join(repo, e.Name()))
		}
	}
	hub := newStandInHub(t, map[string]string{"THUDM/cogvlm-chat-hf": repo, "lmsys/vicuna-7b-v1.5": vicuna})
	srv := f.startServerOf(t, f.models, "--hub", hub.hub.URL+","+hub.files.URL)
	tb := openTab(t, startBrowser(t))
	tb.do(chromedp.Navigate(srv.URL + "e2e/unit.html"))
	eval[bool](tb, strings.Replace(convertScript(hub.hub.URL, "THUDM/cogvlm-chat-hf", "bench"), "shardBytes: 131072, chunkBytes: 16384, ", "", 1))
	r := jsConvertWait(tb)
	if !r.OK {
		t.Fatalf("convert: %s: %s", r.Code, r.Message)
	}
	page := time.Duration(r.Milliseconds * float64(time.Millisecond))
	const full = 35.0e9 // CogVLM-17B's bf16 checkpoint
	t.Logf("checkpoint %.2f GB: CLI %v (%.0f MB/s), page %v (%.0f MB/s, 2 workers), page/CLI throughput %.2f; peak WASM heap %.1f MB per worker; 17B projected: CLI %v, page %v (this machine, network not the limit)",
		float64(input)/1e9, cli.Round(time.Millisecond), float64(input)/cli.Seconds()/1e6, page.Round(time.Millisecond), float64(input)/page.Seconds()/1e6,
		cli.Seconds()/page.Seconds(), float64(r.WasmMemory)/1e6,
		time.Duration(full/float64(input)*float64(cli)).Round(time.Second), time.Duration(full/float64(input)*float64(page)).Round(time.Second))
}
