package e2e

import (
	"context"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// recorder sees every request the browser's pages make — their dedicated workers' and
// service workers' included — through the Fetch domain of the browser session, which
// pauses each one until it is let through. Chromium's own background services (autofill
// predictions and the like) do not pass there: what it records is what the app asked for.
// It can also hold a request (to photograph a download in flight), fail it (a network
// that breaks in the middle of a download) or answer it itself (a captive portal, a
// hostile server).
type recorder struct {
	ctx context.Context

	mu      sync.Mutex
	log     []string                     // URLs, in the order they were requested
	rules   map[string]string            // URL path → "hold", "fail" or "respond"
	held    map[string][]fetch.RequestID // URL path → requests waiting for release
	answers map[string]answerRule        // URL path → the answer of a "respond" rule
}

// answerRule is a response the recorder gives in the server's place.
type answerRule struct {
	status      int64
	contentType string
	body        []byte
}

func recordNetwork(t *testing.T, browserCtx context.Context) *recorder {
	t.Helper()
	r := &recorder{ctx: browserCtx, rules: map[string]string{}, held: map[string][]fetch.RequestID{}, answers: map[string]answerRule{}}
	paused := chromedp.BrowserEvents(browserCtx, fetch.RequestPaused)
	if _, err := chromedp.CallBrowser(browserCtx, fetch.Enable, fetch.EnableParams{}); err != nil {
		t.Fatalf("Fetch.enable: %v", err)
	}
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			r.paused(ev)
		}
	}()
	return r
}

func (r *recorder) paused(ev fetch.EventRequestPaused) {
	path := ev.Request.URL
	if u, err := url.Parse(ev.Request.URL); err == nil {
		path = u.Path
	}
	r.mu.Lock()
	r.log = append(r.log, ev.Request.URL)
	rule := r.rules[path]
	if rule == "hold" {
		r.held[path] = append(r.held[path], ev.RequestID)
	}
	answer := r.answers[path]
	r.mu.Unlock()
	switch rule {
	case "hold":
	case "respond":
		chromedp.CallBrowser(r.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
			RequestID:       ev.RequestID,
			ResponseCode:    answer.status,
			ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: answer.contentType}, {Name: "Cache-Control", Value: "no-store"}},
			Body:            answer.body,
		})
	case "fail":
		chromedp.CallBrowser(r.ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonConnectionReset})
	default:
		chromedp.CallBrowser(r.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
	}
}

// hold keeps requests for path waiting until release.
func (r *recorder) hold(path string) { r.setRule(path, "hold") }

// fail makes requests for path fail as a reset connection.
func (r *recorder) fail(path string) { r.setRule(path, "fail") }

// respond answers requests for path with status, contentType and body until release.
func (r *recorder) respond(path string, status int64, contentType string, body []byte) {
	r.mu.Lock()
	r.answers[path] = answerRule{status, contentType, body}
	r.mu.Unlock()
	r.setRule(path, "respond")
}

func (r *recorder) setRule(path, rule string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rules[path] = rule
}

// holding reports whether a request for path is being held.
func (r *recorder) holding(path string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.held[path]) > 0
}

// release lets held requests for path go on and drops path's rule.
func (r *recorder) release(path string) {
	r.mu.Lock()
	ids := r.held[path]
	delete(r.held, path)
	delete(r.rules, path)
	delete(r.answers, path)
	r.mu.Unlock()
	for _, id := range ids {
		chromedp.CallBrowser(r.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: id})
	}
}

// mark is the number of requests so far, for since.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.log)
}

// since returns the URLs requested after mark.
func (r *recorder) since(mark int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log[mark:])
}
