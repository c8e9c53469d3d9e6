package tokenizer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// WriteJSON of the golden tokenizer.json is the same JSON document (every key and value,
// merges in the same order), and LoadJSON reads it back to the same Tokenizer.
func TestWriteJSONMatchesGolden(t *testing.T) {
	tok := goldenJSON(t)
	var buf bytes.Buffer
	if err := tok.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	readJSON(t, goldenJSONPath, &want)
	for key := range want {
		if !reflect.DeepEqual(got[key], want[key]) {
			t.Errorf("key %q differs from the golden tokenizer.json", key)
		}
	}
	for key := range got {
		if _, ok := want[key]; !ok {
			t.Errorf("key %q is not in the golden tokenizer.json", key)
		}
	}
	back, err := parseJSON(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, tok) {
		t.Error("LoadJSON(WriteJSON(t)) differs from t")
	}
}

// WriteJSON of the tokenizer.model gives a tokenizer.json with the same ids.
func TestWriteJSONFromModel(t *testing.T) {
	m := goldenModel(t)
	var buf bytes.Buffer
	if err := m.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	j, err := parseJSON(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if diff := sameTokenizer(m, j, false); diff != "" {
		t.Fatal(diff)
	}
	if diff := sameTokenizer(j, goldenJSON(t), false); diff != "" {
		t.Fatalf("against the golden tokenizer.json: %s", diff)
	}
	for _, c := range goldenCases(t) {
		if got := j.Encode(c.Text); !equalIDs(got, c.IDs) {
			t.Fatalf("Encode(%q) = %v, want %v", c.Text, got, c.IDs)
		}
	}
}

func TestWriteJSONRefusesOtherSpecialNames(t *testing.T) {
	v := testVocab(normalPieces("▁", "a")...)
	v[2].piece = "<eos>"
	tok := mustParseModel(t, encodeModel(v, llamaTrainerSpec(), llamaNormalizerSpec()))
	checkOneLineError(t, tok.WriteJSON(&bytes.Buffer{}), `eos "<eos>"`, `"</s>"`)
}

// smallJSON is the small model as a tokenizer.json document, to edit.
func smallJSON(t *testing.T) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	if err := mustParseModel(t, smallModel()).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// at walks a tokenizer.json document: at(doc, "model")["type"].
func at(v any, path ...any) map[string]any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	return v.(map[string]any)
}

func parseJSONObject(t *testing.T, v string) any {
	t.Helper()
	var out any
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The forms of the LLaMA tokenizer.json that LoadJSON reads, and what they mean.
func TestLoadJSONVariants(t *testing.T) {
	const metaspace = `{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}`
	withoutStrip := func(doc map[string]any) {
		d := at(doc, "decoder")
		d["decoders"] = d["decoders"].([]any)[:3]
	}
	for _, c := range []struct {
		name       string
		edit       func(doc map[string]any)
		wantPrefix bool
	}{
		{"as written", func(map[string]any) {}, true},
		{"Metaspace pre-tokenizer, prepend first", func(doc map[string]any) {
			doc["normalizer"], doc["pre_tokenizer"] = nil, parseJSONObject(t, metaspace)
		}, true},
		{"Metaspace pre-tokenizer, prepend always", func(doc map[string]any) {
			doc["normalizer"], doc["pre_tokenizer"] = nil, parseJSONObject(t, metaspace)
			at(doc, "pre_tokenizer")["prepend_scheme"] = "always"
		}, true},
		{"Metaspace pre-tokenizer, prepend never", func(doc map[string]any) {
			doc["normalizer"], doc["pre_tokenizer"] = nil, parseJSONObject(t, metaspace)
			at(doc, "pre_tokenizer")["prepend_scheme"] = "never"
			withoutStrip(doc)
		}, false},
		{"Replace before Prepend", func(doc map[string]any) {
			n := at(doc, "normalizer")["normalizers"].([]any)
			n[0], n[1] = n[1], n[0]
		}, true},
		{"no Prepend, no Strip", func(doc map[string]any) {
			at(doc, "normalizer")["normalizers"] = at(doc, "normalizer")["normalizers"].([]any)[1:]
			withoutStrip(doc)
		}, false},
		{"a lone Replace normalizer", func(doc map[string]any) {
			doc["normalizer"] = at(doc, "normalizer", "normalizers", 1)
			withoutStrip(doc)
		}, false},
		{"merges as pairs", func(doc map[string]any) {
			merges := at(doc, "model")["merges"].([]any)
			for i, m := range merges {
				left, right, _ := strings.Cut(m.(string), " ")
				merges[i] = []any{left, right}
			}
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc := smallJSON(t)
			c.edit(doc)
			tok, err := parseJSON(marshal(t, doc))
			if err != nil {
				t.Fatal(err)
			}
			if tok.addDummyPrefix != c.wantPrefix {
				t.Errorf("addDummyPrefix = %v, want %v", tok.addDummyPrefix, c.wantPrefix)
			}
			ref := mustParseModel(t, smallModel())
			for _, text := range []string{"the a", "  in", "x the", "hein"} {
				want := ref.Encode(text)
				if !c.wantPrefix {
					want = encodeWithoutPrefix(ref, text)
				}
				if got := tok.Encode(text); !equalIDs(got, want) {
					t.Errorf("Encode(%q) = %v, want %v", text, got, want)
				}
				if got := tok.Decode(tok.Encode(text)); got != text {
					t.Errorf("Decode(Encode(%q)) = %q", text, got)
				}
			}
		})
	}
}

// encodeWithoutPrefix is what a tokenizer without the dummy prefix gives for text.
func encodeWithoutPrefix(t *Tokenizer, text string) []int {
	c := *t
	c.addDummyPrefix = false
	return c.Encode(text)
}

func TestLoadJSONErrors(t *testing.T) {
	type doc = map[string]any
	model := func(d doc) doc { return at(d, "model") }
	vocab := func(d doc) doc { return at(d, "model", "vocab") }
	for _, c := range []struct {
		name string
		edit func(d doc) // nil: use raw
		raw  string
		want []string
	}{
		{name: "cut short", raw: `{"model": {"type": "BPE", `, want: []string{"invalid JSON at byte"}},
		{name: "not an object", raw: `[1, 2]`, want: []string{"JSON array", "want"}},
		{name: "empty object", raw: `{}`, want: []string{`model.type is ""`}},
		{name: "Unigram", edit: func(d doc) { model(d)["type"] = "Unigram" }, want: []string{`model.type is "Unigram"`}},
		{name: "no byte fallback", edit: func(d doc) { model(d)["byte_fallback"] = false }, want: []string{"model.byte_fallback is false"}},
		{name: "dropout", edit: func(d doc) { model(d)["dropout"] = 0.1 }, want: []string{"model.dropout is 0.1"}},
		{name: "subword prefix", edit: func(d doc) { model(d)["continuing_subword_prefix"] = "##" }, want: []string{`model.continuing_subword_prefix is "##"`}},
		{name: "word suffix", edit: func(d doc) { model(d)["end_of_word_suffix"] = "</w>" }, want: []string{`model.end_of_word_suffix is "</w>"`}},
		{name: "ignore_merges", edit: func(d doc) { model(d)["ignore_merges"] = true }, want: []string{"model.ignore_merges is true"}},
		{name: "no unk_token", edit: func(d doc) { model(d)["unk_token"] = nil }, want: []string{"model.unk_token is null"}},
		{name: "unk_token not in vocab", edit: func(d doc) { model(d)["unk_token"] = "<nope>" }, want: []string{`model.unk_token "<nope>" is not in model.vocab`}},
		{name: "vocab id too large", edit: func(d doc) { vocab(d)["a"] = 9999 }, want: []string{`model.vocab: "a" has id 9999`}},
		{name: "vocab id twice", edit: func(d doc) { vocab(d)["zzz"] = 5 }, want: []string{`model.vocab: "<0x02>" and "zzz" both have id 5`}},
		{name: "vocab id not a number", edit: func(d doc) { vocab(d)["a"] = "1" }, want: []string{"model.vocab", "JSON string"}},
		{name: "empty piece", edit: func(d doc) { vocab(d)[""] = len(vocab(d)) }, want: []string{"model.vocab: the empty string has id"}},
		{name: "byte piece missing", edit: func(d doc) { delete(vocab(d), "<0x41>"); vocab(d)["zzz"] = 68 }, want: []string{"<0x41> is missing"}},
		{name: "added token not special", edit: func(d doc) { at(d, "added_tokens", 2)["special"] = false }, want: []string{`added_tokens[2]: "</s>" is not special`}},
		{name: "added token content", edit: func(d doc) { at(d, "added_tokens", 1)["content"] = "<bos>" }, want: []string{`added_tokens[1]: content "<bos>" but model.vocab has "<s>" at id 1`}},
		{name: "added token beyond vocab", edit: func(d doc) { at(d, "added_tokens", 1)["id"] = 99999 }, want: []string{"added_tokens[1]: id 99999 is outside model.vocab"}},
		{name: "no eos", edit: func(d doc) { d["added_tokens"] = d["added_tokens"].([]any)[:2] }, want: []string{`no special token "</s>" (LLaMA's eos)`}},
		{name: "unk not special", edit: func(d doc) { d["added_tokens"] = d["added_tokens"].([]any)[1:] }, want: []string{`model.unk_token "<unk>" is not among added_tokens`}},
		{name: "NFKC normalizer", edit: func(d doc) { d["normalizer"] = doc{"type": "NFKC"} }, want: []string{`normalizer: {"type":"NFKC"}; only Prepend`}},
		{name: "Prepend twice", edit: func(d doc) {
			n := at(d, "normalizer")
			n["normalizers"] = append([]any{n["normalizers"].([]any)[0]}, n["normalizers"].([]any)...)
		}, want: []string{"normalizer.normalizers[1]", "once each"}},
		{name: "no Replace", edit: func(d doc) { n := at(d, "normalizer"); n["normalizers"] = n["normalizers"].([]any)[:1] }, want: []string{"normalizer.normalizers has no Replace"}},
		{name: "Replace by regex", edit: func(d doc) { at(d, "normalizer", "normalizers", 1)["pattern"] = doc{"Regex": " "} }, want: []string{"normalizer.normalizers[1]", "Regex"}},
		{name: "normalizer and pre-tokenizer", edit: func(d doc) { d["pre_tokenizer"] = doc{"type": "Metaspace"} }, want: []string{`pre_tokenizer "Metaspace" next to a normalizer`}},
		{name: "neither", edit: func(d doc) { d["normalizer"] = nil }, want: []string{"normalizer and pre_tokenizer are both null"}},
		{name: "splitting Metaspace", edit: func(d doc) {
			d["normalizer"], d["pre_tokenizer"] = nil, doc{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true}
		}, want: []string{"pre_tokenizer:", "split false"}},
		{name: "Metaspace prepend_scheme", edit: func(d doc) {
			d["normalizer"], d["pre_tokenizer"] = nil, doc{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes", "split": false}
		}, want: []string{`pre_tokenizer.prepend_scheme is "sometimes"`}},
		{name: "ByteLevel pre-tokenizer", edit: func(d doc) { d["normalizer"], d["pre_tokenizer"] = nil, doc{"type": "ByteLevel"} }, want: []string{`pre_tokenizer: {"type":"ByteLevel"}`}},
		{name: "no decoder", edit: func(d doc) { d["decoder"] = nil }, want: []string{"decoder is null"}},
		{name: "decoder without Strip", edit: func(d doc) { at(d, "decoder")["decoders"] = at(d, "decoder")["decoders"].([]any)[:3] }, want: []string{"decoder: ", "want a Sequence of 4"}},
		{name: "decoder step", edit: func(d doc) { at(d, "decoder", "decoders", 2)["type"] = "CTC" }, want: []string{`decoder.decoders[2]: {"type":"CTC"}; want {"type":"Fuse"}`}},
		{name: "Strip two spaces", edit: func(d doc) { at(d, "decoder", "decoders", 3)["start"] = 2 }, want: []string{"decoder.decoders[3]", `"start":2`}},
		{name: "merge of one piece", edit: func(d doc) { model(d)["merges"] = []any{"▁t"} }, want: []string{`model.merges[0] is ["▁t"]; want two pieces`}},
		{name: "merge of an unknown piece", edit: func(d doc) { model(d)["merges"] = []any{"▁ zz"} }, want: []string{`model.merges[0] "▁" "zz": "zz" is not a normal piece`}},
		{name: "merge into an unknown piece", edit: func(d doc) { model(d)["merges"] = []any{"h t"} }, want: []string{`"ht" is not a normal piece`}},
		{name: "merge of a byte piece", edit: func(d doc) { model(d)["merges"] = []any{"<0x41> a"} }, want: []string{`"<0x41>" is not a normal piece`}},
		{name: "merge twice", edit: func(d doc) { model(d)["merges"] = []any{"h e", "h e"} }, want: []string{`model.merges[1] "h" "e" repeats an earlier merge`}},
		{name: "no vocab", edit: func(d doc) { delete(model(d), "vocab") }, want: []string{"model.vocab is missing"}},
		{name: "no merges", edit: func(d doc) { delete(model(d), "merges") }, want: []string{"model.merges is missing"}},
		{name: "added token id not an integer", edit: func(d doc) { at(d, "added_tokens", 1)["id"] = 1e30 }, want: []string{"added_tokens.id is a JSON number", "want an integer in range"}},
		{name: "merges not a list", edit: func(d doc) { model(d)["merges"] = 3 }, want: []string{"model.merges is not a list"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := []byte(c.raw)
			if c.edit != nil {
				d := smallJSON(t)
				c.edit(d)
				data = marshal(t, d)
			}
			_, err := parseJSON(data)
			checkOneLineError(t, err, c.want...)
		})
	}
}

func TestLoadJSONErrorNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, mustRead(t, goldenJSONPath)[:5000], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadJSON(path)
	checkOneLineError(t, err, "tokenizer: "+path+": ", "invalid JSON at byte")
}
