//go:build js && wasm

package engine

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

// testSession opens the test package name as the app does, with an f16 KV cache.
func testSession(t *testing.T, name string) *Session {
	t.Helper()
	return testSessionKV(t, name, kernels.KVF16)
}

func testSessionKV(t *testing.T, name string, kv kernels.KVPrecision) *Session {
	t.Helper()
	return testSessionOn(t, testKernels(t), name, kv)
}

// testSessionOn is testSessionKV with kernels k (another kind than the shared ones).
func testSessionOn(t *testing.T, k *kernels.Kernels, name string, kv kernels.KVPrecision) *Session {
	t.Helper()
	p := loadTestPackage(t, k, name)
	t.Cleanup(p.Release)
	s, err := NewSession(k, p, testTokenizer(t, name, p), 64, kv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testTokenizer reads the tokenizer of the test package name, loaded as p.
func testTokenizer(t *testing.T, name string, p *Package) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.ParseJSON(fetchBytes(t, testPackages+name+"/"+p.Manifest.Tokenizer.File))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSessionGreedyText(t *testing.T) {
	s := testSession(t, "tiny-f32")
	var golden struct {
		GeneratedIDs  []int  `json:"generated_ids"`
		GeneratedText string `json:"generated_text"`
	}
	text, err := fetchText("/repo/testdata/golden/tiny-text/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal([]byte(text), &golden)
	var streamed strings.Builder
	res, err := s.Generate(Request{Query: "The quick brown fox", Template: "base", Sampling: model.Sampling{MaxNewTokens: 12}},
		func(id int, piece string) bool { streamed.WriteString(piece); return true })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.TokenIDs, golden.GeneratedIDs) || res.Text != golden.GeneratedText {
		t.Errorf("generated %v %q\nwant      %v %q", res.TokenIDs, res.Text, golden.GeneratedIDs, golden.GeneratedText)
	}
	if !strings.HasPrefix(golden.GeneratedText, strings.TrimLeft(streamed.String(), " ")) {
		t.Errorf("streamed %q is not a prefix of %q", streamed.String(), golden.GeneratedText)
	}
	t.Logf("prefill %d tokens in %v, %d decode steps in %v", res.Stats.PrefillTokens, res.Stats.Prefill, res.Stats.DecodeTokens, res.Stats.Decode)

	// onToken returning false stops at once.
	res, err = s.Generate(Request{Query: "The quick brown fox", Template: "base", Sampling: model.Sampling{MaxNewTokens: 12}},
		func(id int, _ string) bool { return false })
	if err != nil || len(res.TokenIDs) != 1 || res.StopReason != model.StopCallback {
		t.Errorf("stopped generation: %v tokens, reason %q, error %v", len(res.TokenIDs), res.StopReason, err)
	}
	// An unknown template and out-of-range settings are the caller's mistakes.
	if _, err := s.Generate(Request{Query: "x", Template: "poem", Sampling: model.Sampling{MaxNewTokens: 1}}, nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("unknown template: error %v, want ErrBadRequest", err)
	}
	if _, err := s.Generate(Request{Query: "x", Template: "base", Sampling: model.Sampling{MaxNewTokens: 1, TopP: 2}}, nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("top-p 2: error %v, want ErrBadRequest", err)
	}
	// Over-long requests are refused with ErrContextLength before any work.
	if _, err := s.Generate(Request{Query: "x", Template: "base", Sampling: model.Sampling{MaxNewTokens: 100}}, nil); !errors.Is(err, ErrContextLength) {
		t.Errorf("over-long request: error %v, want ErrContextLength", err)
	}
}

// TestSessionCapsDefaultNewTokens: a request whose maxNewTokens was left out
// (CapNewTokens, with the default's 256) on a prompt a few tokens short of the session's
// context generates up to the context's end, not an error; asking for the 256 is refused,
// and so is a prompt that fills the context.
func TestSessionCapsDefaultNewTokens(t *testing.T) {
	s := testSession(t, "tiny-f32")
	// prompt finds the shortest query whose prompt has n tokens or more ("fox" repeated).
	prompt := func(n int) string {
		for words := 1; words <= s.dec.maxSeq; words++ {
			q := strings.TrimSpace(strings.Repeat("fox ", words))
			in, err := model.PromptInputs(s.Tok, "base", q, nil, false, s.Cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(in.InputIDs) >= n {
				return q
			}
		}
		t.Fatalf("no query of foxes has a prompt of %d tokens or more", n)
		return ""
	}
	near := s.dec.maxSeq - 3
	req := Request{Query: prompt(near), Template: "base", Sampling: model.DefaultSampling(), CapNewTokens: true}
	res, err := s.Generate(req, nil)
	if err != nil {
		t.Fatalf("maxNewTokens left out, a prompt of %d tokens in a context of %d: %v", near, s.dec.maxSeq, err)
	}
	if len(res.InputIDs) != near {
		t.Fatalf("the prompt has %d tokens, want %d", len(res.InputIDs), near)
	}
	switch res.StopReason {
	case model.StopMaxTokens:
		if len(res.TokenIDs) != 3 {
			t.Errorf("stopped for max tokens after %d new tokens, want the 3 left in the context", len(res.TokenIDs))
		}
	case model.StopEOS:
		if len(res.TokenIDs) >= 3 {
			t.Errorf("eos after %d new tokens, past the context's end", len(res.TokenIDs))
		}
	default:
		t.Errorf("stop reason %q", res.StopReason)
	}
	t.Logf("prompt %d + %d new tokens (%s) in a context of %d", len(res.InputIDs), len(res.TokenIDs), res.StopReason, s.dec.maxSeq)

	req.CapNewTokens = false // 256 asked for: a demand the context cannot meet
	if _, err := s.Generate(req, nil); !errors.Is(err, ErrContextLength) {
		t.Errorf("256 new tokens asked for after %d prompt tokens: error %v, want ErrContextLength", near, err)
	}
	full := Request{Query: prompt(s.dec.maxSeq), Template: "base", Sampling: model.DefaultSampling(), CapNewTokens: true}
	if _, err := s.Generate(full, nil); !errors.Is(err, ErrContextLength) {
		t.Errorf("a prompt filling the context: error %v, want ErrContextLength", err)
	}
}

// TestSessionSampling: temperature, top-k, top-p and repetition penalty give exactly the
// tokens of the CPU reference with the same seed (tiny-f32.sampled.json from ./build.sh).
func TestSessionSampling(t *testing.T) {
	s := testSession(t, "tiny-f32")
	ref := loadGolden(t, testPackages+"tiny-f32.sampled.json")
	res, err := s.Generate(Request{Query: "The quick brown fox", Template: "base", Sampling: model.Sampling{
		MaxNewTokens: 12, Temperature: 0.9, TopK: 40, TopP: 0.95, RepetitionPenalty: 1.1, Seed: 7,
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.TokenIDs, ref.GeneratedIDs) {
		t.Errorf("sampled %v\nCPU reference %v", res.TokenIDs, ref.GeneratedIDs)
	}
}

// TestSessionSamplingOnGPU: top-k/top-p sampling without a repetition penalty runs in
// sample.wgsl and gives exactly the CPU reference's tokens for the seed
// (tiny-f32.topk.json from ./build.sh).
func TestSessionSamplingOnGPU(t *testing.T) {
	s := testSession(t, "tiny-f32")
	ref := loadGolden(t, testPackages+"tiny-f32.topk.json")
	settings := model.Sampling{MaxNewTokens: 12, Temperature: 0.9, TopK: 40, TopP: 0.95, Seed: 7}
	if !kernels.SampleOnGPU(settings) {
		t.Fatal("these settings should sample on the GPU")
	}
	res, err := s.Generate(Request{Query: "The quick brown fox", Template: "base", Sampling: settings}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.TokenIDs, ref.GeneratedIDs) {
		t.Errorf("sampled on the GPU %v\nCPU reference %v", res.TokenIDs, ref.GeneratedIDs)
	}
}

// TestSessionVicunaHistory: a vicuna prompt with an earlier turn reaches the GPU as
// model.PromptIDs lays it out — the earlier answer ends in the eos id, not in the text
// "</s>" — and a history beyond the prompt's byte bound is refused before tokenizing.
func TestSessionVicunaHistory(t *testing.T) {
	s := testSession(t, "tiny-f32")
	history := [][2]string{{"What is this?", "A fox."}}
	res, err := s.Generate(Request{Query: "And its colour?", Template: "vicuna", History: history,
		Sampling: model.Sampling{MaxNewTokens: 2}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := model.PromptIDs(s.Tok, "vicuna", "And its colour?", history, s.Cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := model.BuildInputs(ids, false, s.Cfg).InputIDs
	if !slices.Equal(res.InputIDs, want) {
		t.Errorf("input ids %v\nwant      %v", res.InputIDs, want)
	}
	if !slices.Contains(res.InputIDs[1:], s.Cfg.EOSTokenID) {
		t.Errorf("input ids %v: no eos id after the earlier answer", res.InputIDs)
	}
	huge := [][2]string{{strings.Repeat("x", model.MaxPromptBytes(s.Cfg)), "y"}}
	if _, err := s.Generate(Request{Query: "q", Template: "vicuna", History: huge, Sampling: model.Sampling{MaxNewTokens: 1}}, nil); !errors.Is(err, ErrContextLength) && !errors.Is(err, ErrBadRequest) {
		t.Errorf("a history beyond the byte bound: error %v", err)
	}
}
