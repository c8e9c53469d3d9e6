package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/internal/testimage"
)

// chatAnswer is a --json line of chat (generate's) and its stats line.
type chatAnswer struct {
	goldenExpected
	reused, prefilled int
}

// chatJSON parses chat --json's answers and their "stats:" lines.
func chatJSON(t *testing.T, stdout, stderr string) []chatAnswer {
	t.Helper()
	var answers []chatAnswer
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var a chatAnswer
		if err := json.Unmarshal([]byte(line), &a.goldenExpected); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		answers = append(answers, a)
	}
	var stats []jsonStats
	for _, line := range strings.Split(stderr, "\n") {
		if rest, ok := strings.CutPrefix(line, "stats: "); ok {
			var s jsonStats
			if err := json.Unmarshal([]byte(rest), &s); err != nil {
				t.Fatal(err)
			}
			stats = append(stats, s)
		}
	}
	if len(stats) != len(answers) {
		t.Fatalf("%d answers but %d stats lines:\n%s", len(answers), len(stats), stderr)
	}
	for i, s := range stats {
		answers[i].reused, answers[i].prefilled = s.ReusedTokens, s.PrefillTokens
		if s.ReusedTokens+s.PrefillTokens != len(answers[i].InputIDs) || s.FirstTokenMs <= 0 {
			t.Errorf("answer %d: stats %+v for a prompt of %d tokens", i, s, len(answers[i].InputIDs))
		}
	}
	return answers
}

// generateWithHistory runs generate --json with the turns so far as --history.
func generateWithHistory(t *testing.T, args []string, query string, history [][2]string) goldenExpected {
	t.Helper()
	path := filepath.Join(t.TempDir(), "history.json")
	data, _ := json.Marshal(history)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := cli(t, "", append([]string{"generate", "--query", query, "--history", path, "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("generate: exit %d: %s", code, stderr)
	}
	var got goldenExpected
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// chat answers each line with the earlier turns as history, reusing the KV cache: every
// answer's ids are generate's with the turns before it as --history, and the follow-ups
// reuse at least the previous prompt. /reset and /image start over.
func TestChatEqualsGenerateWithHistory(t *testing.T) {
	modelDir := filepath.Join(golden, "tiny-chat", "model")
	image := filepath.Join(golden, "tiny-chat", "image.png")
	flipped := filepath.Join(t.TempDir(), "other.png")
	writeFlippedPNG(t, image, flipped)
	common := []string{"--model", modelDir, "--max-new-tokens", "7"}

	for _, tc := range []struct {
		name  string
		args  []string
		input string
		// per answer: its query, the image it is about, whether it starts a conversation
		turns []struct {
			query, image string
			fresh        bool
		}
	}{
		{"image", []string{"--image", image}, "What is this?\nAnd the colour?\n\nWhere?\n", []struct {
			query, image string
			fresh        bool
		}{{"What is this?", image, true}, {"And the colour?", image, false}, {"Where?", image, false}}},
		{"text", nil, "Hello\nWhy?\n/reset\nHello\n/quit\nnot asked\n", []struct {
			query, image string
			fresh        bool
		}{{"Hello", "", true}, {"Why?", "", false}, {"Hello", "", true}}},
		{"new image", []string{"--image", image}, "What is this?\n/image " + flipped + "\nWhat is this?\nAnd here?\n", []struct {
			query, image string
			fresh        bool
		}{{"What is this?", image, true}, {"What is this?", flipped, true}, {"And here?", flipped, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, tc.input, append(append([]string{"chat", "--json"}, common...), tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			answers := chatJSON(t, stdout, stderr)
			if len(answers) != len(tc.turns) {
				t.Fatalf("%d answers to %d questions:\n%s", len(answers), len(tc.turns), stdout)
			}
			var history [][2]string
			prev := 0
			for i, turn := range tc.turns {
				if turn.fresh {
					history, prev = nil, 0
				}
				args := slices.Clone(common)
				if turn.image != "" {
					args = append(args, "--image", turn.image)
				}
				want := generateWithHistory(t, args, turn.query, history)
				got := answers[i]
				if !slices.Equal(got.InputIDs, want.InputIDs) || !slices.Equal(got.GeneratedIDs, want.GeneratedIDs) {
					t.Errorf("answer %d: chat %v → %v, generate --history %v → %v", i, got.InputIDs, got.GeneratedIDs, want.InputIDs, want.GeneratedIDs)
				}
				switch {
				case turn.fresh && got.reused != 0:
					t.Errorf("answer %d starts a conversation but reused %d tokens", i, got.reused)
				case !turn.fresh && got.reused < prev-1:
					t.Errorf("answer %d reused %d tokens, want at least the previous prompt's %d − 1", i, got.reused, prev)
				}
				history = append(history, [2]string{turn.query, got.GeneratedText})
				prev = len(got.InputIDs)
			}
		})
	}
}

// Ctrl+C stops the answer being generated, not the chat: the partial answer stays in the
// history and the next question follows it, as generate --history would.
func TestChatInterrupt(t *testing.T) {
	modelDir := filepath.Join(golden, "tiny-chat", "model")
	image := filepath.Join(golden, "tiny-chat", "image.png")
	var interrupt func()
	saved := onInterrupt
	onInterrupt = func(handle func()) func() { interrupt = handle; return func() {} }
	defer func() { onInterrupt = saved }()

	// the answer's second streamed piece presses Ctrl+C
	out := &interruptingWriter{after: 2, press: func() { interrupt() }}
	var errOut bytes.Buffer
	common := []string{"--model", modelDir, "--image", image, "--max-new-tokens", "6"}
	code := run(append([]string{"chat"}, common...), strings.NewReader("What is this?\nGo on\n"), out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	stats := regexp.MustCompile(`\[(stopped; )?first token [^;]+; prompt (\d+) tokens: (\d+) reused, (\d+) prefilled; (\d+) tokens\]`).FindAllStringSubmatch(errOut.String(), -1)
	if len(stats) != 2 || stats[0][1] == "" || stats[0][5] != "2" || stats[1][1] != "" {
		t.Fatalf("want a first answer stopped after 2 tokens and a second one in full:\n%s", errOut.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout %q: want two answers", out.String())
	}
	want := generateWithHistory(t, common, "Go on", [][2]string{{"What is this?", lines[0]}})
	reused, _ := strconv.Atoi(stats[1][3])
	if prompt, _ := strconv.Atoi(stats[1][2]); prompt != len(want.InputIDs) || reused < 1 || lines[1] != want.GeneratedText {
		t.Errorf("after the stop: %q with a prompt of %s tokens (%d reused); generate --history: %q, %d tokens",
			lines[1], stats[1][2], reused, want.GeneratedText, len(want.InputIDs))
	}
}

// interruptingWriter calls press at its after-th write.
type interruptingWriter struct {
	bytes.Buffer
	writes, after int
	press         func()
}

func (w *interruptingWriter) Write(p []byte) (int, error) {
	if w.writes++; w.writes == w.after {
		w.press()
	}
	return w.Buffer.Write(p)
}

func TestChatErrors(t *testing.T) {
	modelDir := filepath.Join(golden, "tiny-chat", "model")
	for _, tc := range []struct {
		name   string
		args   []string
		stdin  string
		code   int
		errHas string
	}{
		{"no model", []string{"chat"}, "", 2, "--model is required"},
		{"bad template", []string{"chat", "--model", modelDir, "--template", "x"}, "", 2, `unknown --template "x"`},
		{"missing image", []string{"chat", "--model", modelDir, "--image", "/nonexistent.png"}, "", 1, "/nonexistent.png"},
		{"unknown command", []string{"chat", "--model", modelDir}, "/colour\n", 1, "unknown command /colour"},
		{"bad /image", []string{"chat", "--model", modelDir}, "/image /nonexistent.png\n", 1, "/nonexistent.png"},
	} {
		code, _, stderr := cli(t, tc.stdin, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.errHas) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 && tc.code == 1 {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and one line with %q", tc.name, code, stderr, tc.code, tc.errHas)
		}
	}
}

// writeFlippedPNG writes src mirrored left to right: another image of the same size.
func writeFlippedPNG(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	flipped, err := testimage.FlippedPNG(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, flipped, 0o644); err != nil {
		t.Fatal(err)
	}
}
