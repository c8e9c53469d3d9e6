package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConversationReuse: through the JS API, a three-turn conversation about one image
// keeps its KV cache: the second and third turns report reusedTokens of at least the
// previous prompt's length − 1, and every turn's ids equal those of a model whose cache
// was reset first (model.resetCache) and those of the CPU reference with the same history.
func TestConversationReuse(t *testing.T) {
	f := getFixture(t)
	srv, _, tb := f.session(t, f.models)
	tb.do(chromedp.Navigate(srv.URL))
	tb.waitState("idle", loadTimeout)
	photo := abs(t, filepath.Join(repoRoot, "testdata", "golden", "tiny-chat", "image.png"))
	data, err := os.ReadFile(photo)
	if err != nil {
		t.Fatal(err)
	}
	queries := []string{"What is in this image?", "And the colours?", "Where is it?"}
	qs, _ := json.Marshal(queries)
	raw := eval[[]byte](tb, fmt.Sprintf(`(async () => {
		const { CogVLM } = await import('/cogvlm.js');
		const chat = await CogVLM.load('/models/demo/manifest.json');
		const fresh = await CogVLM.load('/models/demo/manifest.json');
		const image = new Blob([Uint8Array.from(atob(%q), (c) => c.charCodeAt(0))], { type: 'image/png' });
		const turns = [];
		const history = [];
		for (const query of %s) {
			const o = { image, query, history: [...history], template: 'chat', maxNewTokens: 6 };
			const out = await chat.generate(o);
			await fresh.resetCache();
			turns.push({ out, fresh: await fresh.generate(o) });
			history.push([query, out.text]);
		}
		await chat.dispose();
		await fresh.dispose();
		return turns;
	})()`, base64.StdEncoding.EncodeToString(data), qs))
	type out struct {
		TokenIDs []int  `json:"tokenIds"`
		InputIDs []int  `json:"inputIds"`
		Text     string `json:"text"`
		Stats    struct {
			PrefillTokens int     `json:"prefillTokens"`
			ReusedTokens  int     `json:"reusedTokens"`
			FirstTokenMs  float64 `json:"firstTokenMs"`
		} `json:"stats"`
	}
	var turns []struct{ Out, Fresh out }
	if err := json.Unmarshal(raw, &turns); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if len(turns) != len(queries) {
		t.Fatalf("%d turns for %d questions", len(turns), len(queries))
	}
	var history [][2]string
	for i, turn := range turns {
		ref := f.reference(t, question{Query: queries[i], Template: "chat", Image: photo, History: history, MaxNewTokens: 6})
		got, fresh := turn.Out, turn.Fresh
		if !slices.Equal(got.TokenIDs, fresh.TokenIDs) || !slices.Equal(got.TokenIDs, ref.GeneratedIDs) ||
			!slices.Equal(got.InputIDs, fresh.InputIDs) || !slices.Equal(got.InputIDs, ref.InputIDs) {
			t.Errorf("turn %d: ids %v → %v; after resetCache %v → %v; the CPU reference %v → %v",
				i, got.InputIDs, got.TokenIDs, fresh.InputIDs, fresh.TokenIDs, ref.InputIDs, ref.GeneratedIDs)
		}
		s := got.Stats
		if s.ReusedTokens+s.PrefillTokens != len(got.InputIDs) || fresh.Stats.ReusedTokens != 0 || s.FirstTokenMs <= 0 {
			t.Errorf("turn %d: stats %+v (after resetCache %+v) for a prompt of %d tokens", i, s, fresh.Stats, len(got.InputIDs))
		}
		if i > 0 {
			if prev := len(turns[i-1].Out.InputIDs); s.ReusedTokens < prev-1 {
				t.Errorf("turn %d reused %d tokens, want at least the previous prompt's %d − 1", i, s.ReusedTokens, prev)
			}
		}
		t.Logf("turn %d: %d prompt tokens, %d reused; first token %.0f ms (after resetCache %.0f ms)",
			i, len(got.InputIDs), s.ReusedTokens, s.FirstTokenMs, fresh.Stats.FirstTokenMs)
		history = append(history, [2]string{queries[i], got.Text})
	}
}
