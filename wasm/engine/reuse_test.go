//go:build js && wasm

package engine

import (
	"errors"
	"slices"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/internal/testimage"
	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

// TestSessionReuseEqualsFresh: conversations on one session, whose KV cache carries over
// between turns, give each turn the tokens of a session whose cache was emptied first,
// and reuse exactly the common prefix of ids with what the cache holds: at least the
// previous prompt less one token when the conversation goes on, nothing for another image
// or template. Three turns with and without an image, a stopped answer, an edited
// history, a new image.
func TestSessionReuseEqualsFresh(t *testing.T) {
	k := testKernels(t)
	p := loadTestPackage(t, k, "tiny-f32")
	t.Cleanup(p.Release)
	tok := testTokenizer(t, "tiny-f32", p)
	newSession := func() *Session {
		s, err := NewSession(k, p, tok, 320, kernels.KVF16)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	chat, fresh := newSession(), newSession()
	img := fetchBytes(t, "/repo/testdata/golden/tiny-chat/image.png")
	other, err := testimage.FlippedPNG(img)
	if err != nil {
		t.Fatal(err)
	}

	type turn struct {
		query     string
		image     []byte
		template  string
		edit      func(h [][2]string)
		stopAfter int
		reuse     string // "previous": ≥ the previous prompt − 1; "none"; "": the common prefix only
	}
	for _, tc := range []struct {
		name  string
		turns []turn
	}{
		{"text only", []turn{
			{query: "Hello there", template: "vicuna"},
			{query: "And then?", template: "vicuna", reuse: "previous"},
			{query: "Why?", template: "vicuna", reuse: "previous"},
		}},
		{"image", []turn{
			{query: "What is this?", image: img, template: "chat"},
			{query: "And the colour?", image: img, template: "chat", reuse: "previous"},
			{query: "Where is it?", image: img, template: "chat", reuse: "previous"},
		}},
		{"stopped answer", []turn{
			{query: "What is this?", image: img, template: "chat", stopAfter: 2},
			{query: "Go on", image: img, template: "chat", stopAfter: 1, reuse: "previous"},
			{query: "Is it red?", image: img, template: "chat", reuse: "previous"},
		}},
		{"edited history", []turn{
			{query: "What is this?", image: img, template: "vqa"},
			{query: "How many?", image: img, template: "vqa", reuse: "previous"},
			{query: "Which one?", image: img, template: "vqa", edit: func(h [][2]string) { h[1][0] = "How many are there?" }},
		}},
		{"new image, new template", []turn{
			{query: "What is this?", image: img, template: "chat"},
			{query: "And now?", image: other, template: "chat", reuse: "none"},
			{query: "And the colour?", image: other, template: "chat", reuse: "previous"},
			{query: "And the colour?", image: other, template: "vqa", reuse: "none"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chat.ResetCache()
			var history [][2]string
			var cached []int // the ids the chat session's cache should hold
			prev := 0
			for i, turn := range tc.turns {
				if turn.edit != nil {
					turn.edit(history)
				}
				req := Request{Image: turn.image, Query: turn.query, History: slices.Clone(history), Template: turn.template,
					Sampling: model.Sampling{MaxNewTokens: 6}}
				stop := func() func(int, string) bool {
					n := 0
					return func(int, string) bool { n++; return turn.stopAfter == 0 || n < turn.stopAfter }
				}
				got, err := chat.Generate(req, stop())
				if err != nil {
					t.Fatal(err)
				}
				fresh.ResetCache()
				want, err := fresh.Generate(req, stop())
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got.TokenIDs, want.TokenIDs) || got.StopReason != want.StopReason {
					t.Fatalf("turn %d: reusing %d tokens %v (%s), fresh %v (%s)", i, got.Stats.ReusedTokens, got.TokenIDs, got.StopReason, want.TokenIDs, want.StopReason)
				}
				wantReused := 0
				if turn.reuse != "none" {
					for wantReused < min(len(cached), len(got.InputIDs)-1) && cached[wantReused] == got.InputIDs[wantReused] {
						wantReused++
					}
				}
				r := got.Stats.ReusedTokens
				if r != wantReused || r+got.Stats.PrefillTokens != len(got.InputIDs) || want.Stats.ReusedTokens != 0 {
					t.Errorf("turn %d: reused %d and prefilled %d of %d tokens, want %d reused (fresh: %d)", i, r, got.Stats.PrefillTokens, len(got.InputIDs), wantReused, want.Stats.ReusedTokens)
				}
				if turn.reuse == "previous" && r < prev-1 {
					t.Errorf("turn %d: reused %d tokens, want at least the previous prompt's %d − 1", i, r, prev)
				}
				if got.Stats.FirstToken <= 0 {
					t.Errorf("turn %d: first token after %v", i, got.Stats.FirstToken)
				}
				t.Logf("turn %d: %d prompt tokens, %d reused; first token %v (fresh %v)", i, len(got.InputIDs), r, got.Stats.FirstToken, want.Stats.FirstToken)
				fed := got.TokenIDs
				if got.StopReason != model.StopEOS && len(fed) > 0 {
					fed = fed[:len(fed)-1]
				}
				cached = append(slices.Clone(got.InputIDs), fed...)
				if !slices.Equal(chat.kv.IDs(), cached) || chat.dec.Length() != len(cached) {
					t.Errorf("turn %d: the cache holds %d ids (decoder: %d), want %d", i, chat.kv.Len(), chat.dec.Length(), len(cached))
				}
				history = append(history, [2]string{turn.query, got.Text})
				prev = len(got.InputIDs)
			}
		})
	}

	// a refused request leaves the cache; ResetCache empties it
	n := chat.kv.Len()
	if _, err := chat.Generate(Request{Query: "x", Template: "poem", Sampling: model.Sampling{MaxNewTokens: 1}}, nil); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("unknown template: %v", err)
	}
	if chat.kv.Len() != n || chat.dec.Length() != n {
		t.Errorf("a refused request changed the cache from %d tokens to %d (decoder %d)", n, chat.kv.Len(), chat.dec.Length())
	}
	chat.ResetCache()
	if chat.kv.Len() != 0 || chat.dec.Length() != 0 {
		t.Errorf("ResetCache left %d tokens (decoder %d)", chat.kv.Len(), chat.dec.Length())
	}
}
