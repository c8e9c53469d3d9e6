package e2e

import (
	"encoding/json"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestUnits runs the table-driven unit tests of the app's modules (testdata/unit.js) in
// Chromium, where they run for real: WebCrypto, Cache Storage, createImageBitmap and
// OffscreenCanvas are the browser's own.
func TestUnits(t *testing.T) {
	f := getFixture(t)
	srv := f.startServer(t)
	tb := openTab(t, startBrowser(t))
	tb.do(chromedp.Navigate(srv.URL + "e2e/unit.html"))
	raw := eval[[]byte](tb, `import('/e2e/unit.js').then((m) => m.run())`)
	var res struct {
		Count    int      `json:"count"`
		Failures []string `json:"failures"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("unit.js: %v\n%s", err, raw)
	}
	for _, f := range res.Failures {
		t.Error(f)
	}
	if res.Count < 40 {
		t.Errorf("unit.js ran %d cases; some did not register", res.Count)
	}
	t.Logf("%d cases, %d failed", res.Count, len(res.Failures))
}
