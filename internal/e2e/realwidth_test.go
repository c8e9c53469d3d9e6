package e2e

import (
	"path/filepath"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/internal/rehearsal"
)

// wasmHeapLimit is the engine's WebAssembly heap at any model size: weight bytes never
// enter it (they go fetch → ArrayBuffer → GPU), so it holds the manifest, the tokenizer,
// one image and the session's bookkeeping.
const wasmHeapLimit = 256 << 20

// TestRealWidth is the full-size rehearsal (bench/fullsize.sh) at one decoder and one vision
// layer of CogVLM's real widths: hidden 4096, MLP 11008, vocabulary 32000, vision 1792 ×
// 15360 — every real kernel shape goes through the page. It uses cogvlm-base-224-hf, whose
// widths are cogvlm-chat-hf's, because its 258 image tokens keep the image question (the
// vision shapes) within CI's time where 490's 1227 would not. demo-model → convert (q4,
// 0.6 GB) → the server → the page's JS API loads, stores and answers a text and an image
// question with the CPU reference's token ids → the same from the stored copy with the
// server stopped → deleting the stored copy frees its bytes.
func TestRealWidth(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the real-width rehearsal takes minutes")
	}
	requireBrowser(t)
	repo, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	var r rehearsal.Report
	err = rehearsal.Run(rehearsal.Options{
		Repo:        repo,
		Preset:      "cogvlm-base-224-hf",
		Layers:      1,
		VisionLayer: 1,
		Tokens:      4,
		Image:       filepath.Join(repo, "testdata", "golden", "tiny-chat", "image.png"),
		Log:         t.Logf,
	}, &r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("package %.2f GB in %d shards; convert %.1f s; page load %.1f s (offline %.1f s); text %.2f s/token (CPU reference %.2f); WASM heap %.0f MB; browser peak PSS %.2f GB; plan %s",
		float64(r.PackageBytes)/1e9, r.PackageShards, r.ConvertSeconds, r.LoadSeconds, r.OfflineLoadSeconds,
		r.PageTextSecondsPerToken, r.CLITextSecondsPerToken, float64(r.WASMHeapBytes)/1e6, float64(r.BrowserPeakPSS)/1e9, r.MemoryPlan)
	if !r.TokensEqual {
		t.Errorf("the page's tokens differ from the CPU reference's (text %v, image %v)", r.TextIDs, r.ImageIDs)
	}
	if !r.OfflineEqual {
		t.Error("the stored copy, loaded with the server stopped, gave other tokens or was not used")
	}
	// the follow-up reuses the conversation: its first token in under a tenth of the
	// image question's time (issue 15's bar)
	t.Logf("follow-up: first token %.3f s reusing %d tokens, image question %.3f s: ratio %.4f (CPU reference %.4f)",
		r.PageFollowupFirstTokenSeconds, r.PageFollowupReusedTokens, r.PageImageFirstTokenSeconds, r.PageFollowupFirstTokenRatio, r.CLIFollowupFirstTokenRatio)
	if r.PageFollowupReusedTokens <= r.PageFollowupPrefillTokens || !(r.PageFollowupFirstTokenRatio > 0 && r.PageFollowupFirstTokenRatio < 0.1) {
		t.Errorf("the follow-up reused %d tokens and prefilled %d; its first token took %.4f of the image question's time, want under 0.1",
			r.PageFollowupReusedTokens, r.PageFollowupPrefillTokens, r.PageFollowupFirstTokenRatio)
	}
	if r.WASMHeapBytes == 0 || r.WASMHeapBytes > wasmHeapLimit {
		t.Errorf("the engine's WebAssembly heap is %d bytes, want (0, %d]", r.WASMHeapBytes, wasmHeapLimit)
	}
	if r.StorageBytes < r.PackageBytes {
		t.Errorf("browser storage holds %d bytes after the load, less than the %d-byte package", r.StorageBytes, r.PackageBytes)
	}
}
