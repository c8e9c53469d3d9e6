package tokenizer

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Every string of cases.json gives SentencePiece's ids, from either file.
func TestEncodeGoldenCases(t *testing.T) {
	cases := goldenCases(t)
	for _, tk := range goldenTokenizers(t) {
		t.Run(tk.name, func(t *testing.T) {
			failed := 0
			for _, c := range cases {
				if got := tk.tok.Encode(c.Text); !equalIDs(got, c.IDs) {
					t.Errorf("Encode(%q) = %v, want %v", c.Text, got, c.IDs)
					if failed++; failed == 10 {
						t.Fatal("too many failures")
					}
				}
			}
		})
	}
}

// Decode(Encode(s)) gives s back, leading spaces included: the dummy prefix is the one
// space Decode strips. Only "▁" (decoded as a space) and invalid UTF-8 (U+FFFD) change.
func TestDecodeEncodeRoundTrip(t *testing.T) {
	cases := goldenCases(t)
	cases = append(cases, tokenizerCase{Text: "   three leading spaces"}, tokenizerCase{Text: "bad \xff\xfe byte \xe4\xb8"})
	for _, tk := range goldenTokenizers(t) {
		t.Run(tk.name, func(t *testing.T) {
			for _, c := range cases {
				if got, want := tk.tok.Decode(tk.tok.Encode(c.Text)), roundTrip(c.Text); got != want {
					t.Errorf("Decode(Encode(%q)) = %q, want %q", c.Text, got, want)
				}
			}
		})
	}
}

// The model cases: generated_text is Decode(generated_ids), and prompt_text gives the
// text ids of input_ids (after bos and the image tokens).
func TestGoldenModelCases(t *testing.T) {
	tok := goldenJSON(t)
	for _, name := range []string{"tiny-chat", "tiny-text"} {
		t.Run(name, func(t *testing.T) {
			var input struct {
				PromptText string `json:"prompt_text"`
			}
			var expected struct {
				InputIDs      []int  `json:"input_ids"`
				TokenTypeIDs  []int  `json:"token_type_ids"`
				GeneratedIDs  []int  `json:"generated_ids"`
				GeneratedText string `json:"generated_text"`
			}
			readJSON(t, filepath.Join(golden, name, "input.json"), &input)
			readJSON(t, filepath.Join(golden, name, "expected.json"), &expected)

			local, err := LoadJSON(filepath.Join(golden, name, "model", "tokenizer.json"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(local, tok) {
				t.Errorf("%s/model/tokenizer.json differs from tiny-chat's", name)
			}
			if got := local.Decode(expected.GeneratedIDs); got != expected.GeneratedText {
				t.Errorf("Decode(generated_ids) = %q, want %q", got, expected.GeneratedText)
			}
			if expected.InputIDs[0] != local.BOS() {
				t.Errorf("input_ids[0] = %d, want bos %d", expected.InputIDs[0], local.BOS())
			}
			images := 0
			for _, typ := range expected.TokenTypeIDs {
				images += typ
			}
			text := expected.InputIDs[1+images:]
			if got := local.Encode(input.PromptText); !equalIDs(got, text) {
				t.Errorf("Encode(%q) = %v, want %v", input.PromptText, got, text)
			}
		})
	}
}

// Both files describe one tokenizer: same pieces, kinds, special ids and merge pairs.
// Only the merge ranks differ (score order against the file's list order).
func TestLoadersAgree(t *testing.T) {
	if diff := sameTokenizer(goldenModel(t), goldenJSON(t), false); diff != "" {
		t.Error(diff)
	}
}

func TestAccessors(t *testing.T) {
	for _, tk := range goldenTokenizers(t) {
		t.Run(tk.name, func(t *testing.T) {
			tok := tk.tok
			for _, c := range []struct {
				name      string
				got, want any
			}{
				{"VocabSize", tok.VocabSize(), 32000},
				{"UNK", tok.UNK(), 0},
				{"BOS", tok.BOS(), 1},
				{"EOS", tok.EOS(), 2},
				{"Piece(0)", tok.Piece(0), "<unk>"},
				{"Piece(1)", tok.Piece(1), "<s>"},
				{"Piece(2)", tok.Piece(2), "</s>"},
				{"Piece(3+0x41)", tok.Piece(3 + 0x41), "<0x41>"},
				{"Piece(278)", tok.Piece(278), "▁the"},
				{"Piece(-1)", tok.Piece(-1), ""},
				{"Piece(32000)", tok.Piece(32000), ""},
			} {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
		})
	}
}

// Bytes that are not UTF-8 become U+FFFD, one per byte, before tokenizing (SentencePiece's
// normalizer does the same).
func TestEncodeInvalidUTF8(t *testing.T) {
	tok := goldenModel(t)
	for _, c := range []struct{ in, same string }{
		{"a\xffb", "a\uFFFDb"},
		{"\xe4\xb8", "\uFFFD\uFFFD"},                                         // a CJK character cut short
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"},                               // a UTF-16 surrogate
		{"\xc0\xafx", "\uFFFD\uFFFDx"},                                       // an overlong "/"
		{"ok \xf0\x9f\x98 then", "ok \uFFFD\uFFFD\uFFFD then"},               // an emoji cut short
		{"\uFFFD", "\uFFFD"},                                                 // a real U+FFFD is kept
		{strings.Repeat("\x80", 3), strings.Repeat("\uFFFD", 3)},             // lone continuation bytes
		{"trailing \xc3", "trailing \uFFFD"},                                 // cut at the end
		{"\x00nul", "\x00nul"},                                               // NUL is a character (byte fallback)
		{"mixed\xe4\xb8\xadok\xe4", "mixed中ok\uFFFD"},                        // valid and invalid together
		{"  \xff  ", "  \uFFFD  "},                                           // among spaces
		{"\xff" + strings.Repeat(" ", 5), "\uFFFD" + strings.Repeat(" ", 5)}, // before a run of spaces
	} {
		got, want := tok.Encode(c.in), tok.Encode(c.same)
		if !equalIDs(got, want) {
			t.Errorf("Encode(%q) = %v, want %v (Encode(%q))", c.in, got, want, c.same)
		}
		if d := tok.Decode(got); d != c.same {
			t.Errorf("Decode(Encode(%q)) = %q, want %q", c.in, d, c.same)
		}
	}
}

// Special tokens written in the text are text, as in SentencePiece.
func TestEncodeSpecialTokenText(t *testing.T) {
	tok := goldenModel(t)
	for _, text := range []string{"<s>", "</s>", "<unk>", "<0x41>"} {
		for _, id := range tok.Encode(text) {
			if k := tok.kinds[id]; k != kindNormal {
				t.Errorf("Encode(%q) has %q, kind %d", text, tok.Piece(id), k)
			}
		}
	}
}

func TestLoad(t *testing.T) {
	// A folder with only tokenizer.json (the golden model folders).
	got, err := Load(filepath.Join(golden, "tiny-chat", "model"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, goldenJSON(t)) {
		t.Error("Load(tiny-chat/model) differs from LoadJSON(tokenizer.json)")
	}
	// A folder with only tokenizer.model.
	got, err = Load(filepath.Join(golden, "tokenizer"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, goldenModel(t)) {
		t.Error("Load(tokenizer) differs from LoadModel(tokenizer.model)")
	}

	// With both, tokenizer.model wins: a broken one is reported, not skipped.
	dir := t.TempDir()
	copyFile(t, goldenJSONPath, filepath.Join(dir, "tokenizer.json"))
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.model"), []byte("\x0a\x05ab"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir)
	checkOneLineError(t, err, filepath.Join(dir, "tokenizer.model"), "truncated")

	empty := t.TempDir()
	_, err = Load(empty)
	checkOneLineError(t, err, empty, "tokenizer.model", "tokenizer.json")
}

func TestLoadMissingFiles(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		load func(string) (*Tokenizer, error)
	}{{"tokenizer.model", LoadModel}, {"tokenizer.json", LoadJSON}} {
		path := filepath.Join(dir, c.name)
		_, err := c.load(path)
		checkOneLineError(t, err, path, "no such file")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
