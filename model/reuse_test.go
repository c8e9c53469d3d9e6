package model

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// chatTurn is one question of a conversation test. edit, when set, changes the history
// before the question (an edited conversation); stopAfter > 0 stops the answer after that
// many tokens (the user's stop button), and the partial answer goes into the history.
type chatTurn struct {
	query     string
	pixels    []float32
	edit      func(history [][2]string)
	stopAfter int
	// wantReuse: the turn reuses at least the previous prompt less one token (the
	// conversation went on unchanged), or nothing (another image).
	wantReuse reuseWant
}

type reuseWant int

const (
	reuseAny      reuseWant = iota // only the exact common prefix is checked
	reusePrevious                  // ≥ the previous prompt's length − 1
	reuseNone                      // 0
)

// TestGenerateReuseEqualsFresh runs conversations on one model, whose KV cache carries
// over between turns, and each turn again on a fresh model: the tokens, the logits and the
// first step's hidden state are equal bit for bit, and each turn reuses exactly the
// common prefix of its ids with what the cache holds (the previous prompt and its
// answer's ids as generated, not as re-tokenized).
func TestGenerateReuseEqualsFresh(t *testing.T) {
	m := goldenModel(t)
	tok := goldenTokenizer(t)
	cfg := m.Config
	goldenMu.Lock()
	defer goldenMu.Unlock()
	pixels := loadGoldenCase(t, "tiny-chat").tensors["pixel_values"]
	other := slices.Clone(pixels)
	slices.Reverse(other) // another image: the same size, other content

	for _, tc := range []struct {
		name     string
		template string
		turns    []chatTurn
	}{
		{"text only", "vicuna", []chatTurn{
			{query: "Hello there"},
			{query: "And then?", wantReuse: reusePrevious},
			{query: "Why?", wantReuse: reusePrevious},
		}},
		{"image", "chat", []chatTurn{
			{query: "What is this?", pixels: pixels},
			{query: "And the colour?", pixels: pixels, wantReuse: reusePrevious},
			{query: "Where is it?", pixels: pixels, wantReuse: reusePrevious},
		}},
		{"stopped answer", "chat", []chatTurn{
			{query: "What is this?", pixels: pixels, stopAfter: 2},
			{query: "Go on", pixels: pixels, stopAfter: 1, wantReuse: reusePrevious},
			{query: "Is it red?", pixels: pixels, wantReuse: reusePrevious},
		}},
		{"edited history", "vqa", []chatTurn{
			{query: "What is this?", pixels: pixels},
			{query: "How many?", pixels: pixels, wantReuse: reusePrevious},
			{query: "Which one?", pixels: pixels, edit: func(h [][2]string) { h[1][0] = "How many are there?" }},
		}},
		{"edited first answer, vicuna", "vicuna", []chatTurn{
			{query: "Hi"},
			{query: "More", wantReuse: reusePrevious},
			{query: "Less", edit: func(h [][2]string) { h[0][1] = "something else" }},
		}},
		{"new image", "chat", []chatTurn{
			{query: "What is this?", pixels: pixels},
			{query: "And now?", pixels: other, wantReuse: reuseNone},
			{query: "And the colour?", pixels: other, wantReuse: reusePrevious},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chat := &Model{Config: cfg, Weights: m.Weights}
			var history [][2]string
			var cachedIDs []int // what the chat model's cache should hold
			prevPrompt := 0
			for i, turn := range tc.turns {
				if turn.edit != nil {
					turn.edit(history)
				}
				textIDs, err := PromptIDs(tok, tc.template, turn.query, history, cfg)
				if err != nil {
					t.Fatal(err)
				}
				in := BuildInputs(textIDs, turn.pixels != nil, cfg)
				s := Sampling{MaxNewTokens: 6, KeepStepLogits: true}
				stop := func() func(int) bool {
					n := 0
					return func(int) bool { n++; return turn.stopAfter == 0 || n < turn.stopAfter }
				}
				got, err := chat.Generate(in, turn.pixels, s, stop())
				if err != nil {
					t.Fatal(err)
				}
				want, err := (&Model{Config: cfg, Weights: m.Weights}).Generate(in, turn.pixels, s, stop())
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got.GeneratedIDs, want.GeneratedIDs) || got.StopReason != want.StopReason ||
					!slices.Equal(got.StepLogits, want.StepLogits) || !slices.Equal(got.PrefillHiddenLast, want.PrefillHiddenLast) {
					t.Fatalf("turn %d: with the cache %v (%s), fresh %v (%s); or their logits differ",
						i, got.GeneratedIDs, got.StopReason, want.GeneratedIDs, want.StopReason)
				}

				// exactly the common prefix of ids is reused (the image's tokens are
				// pads: a new image is checked by wantReuse)
				wantReused := 0
				if turn.wantReuse != reuseNone {
					for wantReused < min(len(cachedIDs), len(in.InputIDs)-1) && cachedIDs[wantReused] == in.InputIDs[wantReused] {
						wantReused++
					}
				}
				r := got.Stats.ReusedTokens
				if r != wantReused || got.Stats.PrefillTokens != len(in.InputIDs)-r {
					t.Errorf("turn %d: reused %d and prefilled %d of %d tokens, want %d reused", i, r, got.Stats.PrefillTokens, len(in.InputIDs), wantReused)
				}
				if turn.wantReuse == reusePrevious && r < prevPrompt-1 {
					t.Errorf("turn %d: reused %d tokens, want at least the previous prompt's %d − 1", i, r, prevPrompt)
				}
				if want.Stats.ReusedTokens != 0 || got.Stats.FirstToken <= 0 {
					t.Errorf("turn %d: a fresh model reused %d tokens; first token after %v", i, want.Stats.ReusedTokens, got.Stats.FirstToken)
				}

				// the cache holds the prompt and the generated tokens that were fed back:
				// all of them after EOS, all but the last otherwise
				fed := got.GeneratedIDs
				if got.StopReason != StopEOS && len(fed) > 0 {
					fed = fed[:len(fed)-1]
				}
				cachedIDs = append(slices.Clone(in.InputIDs), fed...)
				if n := chat.CacheLength(); n != len(cachedIDs) {
					t.Errorf("turn %d: the cache holds %d tokens, want %d", i, n, len(cachedIDs))
				}
				history = append(history, [2]string{turn.query, tok.Decode(got.GeneratedIDs)})
				prevPrompt = len(in.InputIDs)
			}
		})
	}
}

// newChatModel is a model with the golden weights and an empty cache, and a short text
// prompt; the test holds goldenMu until it ends.
func newChatModel(t *testing.T) (golden, chat *Model, in Inputs) {
	m := goldenModel(t)
	goldenMu.Lock()
	t.Cleanup(goldenMu.Unlock)
	return m, &Model{Config: m.Config, Weights: m.Weights}, BuildInputs([]int{450, 4996, 17354}, false, m.Config)
}

// TestGenerateReuseAfterError: a refused request (a bad token, a context that does not
// fit) leaves the cache as it was, a prefill stopped part way leaves the reused prefix,
// and ResetCache empties it.
func TestGenerateReuseAfterError(t *testing.T) {
	m, chat, in := newChatModel(t)
	cfg := m.Config
	s := Sampling{MaxNewTokens: 4}
	first, err := chat.Generate(in, nil, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	cached := chat.CacheLength()
	for _, bad := range []Inputs{
		BuildInputs([]int{450, 4996, 32000}, false, cfg),
		BuildInputs(make([]int, cfg.MaxPositionEmbeddings), false, cfg),
	} {
		if _, err := chat.Generate(bad, nil, s, nil); err == nil {
			t.Fatal("a bad request was accepted")
		}
		if chat.CacheLength() != cached {
			t.Fatalf("a refused request changed the cache from %d to %d tokens", cached, chat.CacheLength())
		}
	}
	// stopped after the first layer of a longer prompt's new tokens: the cache keeps the
	// reused prefix, whose rows are intact
	longer := BuildInputs([]int{450, 4996, 17354, 29889, 450}, false, cfg)
	layers := 0
	chat.Stop = func() bool { layers++; return layers > 1 }
	if _, err := chat.Generate(longer, nil, s, nil); !errors.Is(err, ErrStopped) {
		t.Fatalf("a stopped prefill: %v, want ErrStopped", err)
	}
	chat.Stop = nil
	if n := chat.CacheLength(); n != len(in.InputIDs) {
		t.Fatalf("after a stopped prefill the cache holds %d tokens, want the reused %d", n, len(in.InputIDs))
	}
	got, err := chat.Generate(longer, nil, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := (&Model{Config: cfg, Weights: m.Weights}).Generate(longer, nil, s, nil)
	if err != nil || !slices.Equal(got.GeneratedIDs, want.GeneratedIDs) || !slices.Equal(got.PrefillLogitsLast, want.PrefillLogitsLast) {
		t.Fatalf("after a stopped prefill: %v, fresh %v (%v)", got.GeneratedIDs, want.GeneratedIDs, err)
	}

	again, err := chat.Generate(in, nil, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.GeneratedIDs, first.GeneratedIDs) || again.Stats.ReusedTokens != len(in.InputIDs)-1 {
		t.Errorf("the same request again: %v reusing %d tokens, want %v reusing %d", again.GeneratedIDs, again.Stats.ReusedTokens, first.GeneratedIDs, len(in.InputIDs)-1)
	}
	chat.ResetCache()
	if chat.CacheLength() != 0 {
		t.Fatalf("ResetCache left %d tokens", chat.CacheLength())
	}
	after, err := chat.Generate(in, nil, s, nil)
	if err != nil || after.Stats.ReusedTokens != 0 || !slices.Equal(after.GeneratedIDs, first.GeneratedIDs) {
		t.Errorf("after ResetCache: %v reusing %d tokens (%v)", after.GeneratedIDs, after.Stats.ReusedTokens, err)
	}
}

// TestPrefillDoesNotReuse: Prefill runs every token (an observer sees them all), and so
// does Generate while an observer is set.
func TestPrefillDoesNotReuse(t *testing.T) {
	_, chat, in := newChatModel(t)
	rows := 0
	chat.ObserveLinear = func(weight string, x []float32, n, k int) {
		if strings.Contains(weight, "query_key_value") && strings.HasPrefix(weight, "model.layers.0.") {
			rows += n
		}
	}
	for range 2 {
		if _, _, err := chat.Prefill(in, nil, 1); err != nil {
			t.Fatal(err)
		}
	}
	res, err := chat.Generate(in, nil, Sampling{MaxNewTokens: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 3*len(in.InputIDs) || res.Stats.ReusedTokens != 0 {
		t.Errorf("layer 0's qkv saw %d rows over three prefills of %d tokens (Generate reused %d)", rows, len(in.InputIDs), res.Stats.ReusedTokens)
	}
	chat.ObserveLinear = nil
	_, _, reused, err := chat.PrefillReuse(in, nil, 1)
	if err != nil || reused != len(in.InputIDs)-1 {
		t.Errorf("PrefillReuse of the same prompt reused %d tokens (%v), want %d", reused, err, len(in.InputIDs)-1)
	}
}

// TestCommonPrefixRoutingAndPositions: equal ids are not enough: a token whose position
// or expert differs in the new prompt (the image's last token, eoi, becomes an interior
// patch of a longer image run) ends the reused prefix, and so does another image.
func TestCommonPrefixRoutingAndPositions(t *testing.T) {
	cached := Inputs{InputIDs: []int{1, 0, 0, 0, 0, 5}, TokenTypeIDs: []int{0, 1, 1, 1, 1, 0}}
	cached.PositionIDs = PositionIDs(cached.TokenTypeIDs)
	var c KVTokens
	c.AppendInputs(cached, cached.VisionExpertMask(), 0)
	c.Image = ImageKey{1}

	longer := Inputs{InputIDs: []int{1, 0, 0, 0, 0, 0, 0, 5}, TokenTypeIDs: []int{0, 1, 1, 1, 1, 1, 1, 0}}
	longer.PositionIDs = PositionIDs(longer.TokenTypeIDs)
	for _, tc := range []struct {
		name  string
		in    Inputs
		image ImageKey
		want  int
	}{
		{"same", cached, ImageKey{1}, 6},
		{"eoi becomes a patch", longer, ImageKey{1}, 4},
		{"another image", cached, ImageKey{2}, 0},
	} {
		if got := c.CommonPrefix(tc.in, tc.in.VisionExpertMask(), tc.image); got != tc.want {
			t.Errorf("%s: common prefix %d, want %d", tc.name, got, tc.want)
		}
	}
}
