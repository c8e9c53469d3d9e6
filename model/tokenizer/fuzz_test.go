package tokenizer

import (
	"bytes"
	"flag"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// Any string encodes to ids of the vocabulary, the same from both files, and decodes
// back to itself (invalid UTF-8 as U+FFFD, "▁" as a space); streaming gives the same.
// go test runs the seeds; go test -fuzz FuzzEncodeDecode searches further.
func FuzzEncodeDecode(f *testing.F) {
	for _, c := range goldenCases(f) {
		f.Add(c.Text)
	}
	for _, s := range []string{"\xff", "a\xe4\xb8", "\xed\xa0\x80", " ", "▁", "<s>", "\x00", strings.Repeat(" ", 50), strings.Repeat("😀", 10)} {
		f.Add(s)
	}
	m, j := goldenModel(f), goldenJSON(f)
	f.Fuzz(func(t *testing.T, text string) {
		ids := m.Encode(text)
		if jids := j.Encode(text); !equalIDs(ids, jids) {
			t.Fatalf("Encode(%q): tokenizer.model gives %v, tokenizer.json %v", text, ids, jids)
		}
		for _, id := range ids {
			if id < 0 || id >= m.VocabSize() || m.kinds[id] == kindControl || m.kinds[id] == kindUnknown {
				t.Fatalf("Encode(%q) has id %d (%q)", text, id, m.Piece(id))
			}
		}
		got := m.Decode(ids)
		if want := roundTrip(text); got != want {
			t.Fatalf("Decode(Encode(%q)) = %q, want %q", text, got, want)
		}
		d := m.NewStreamDecoder()
		var streamed strings.Builder
		for _, id := range ids {
			s := d.Push(id)
			if !utf8.ValidString(s) {
				t.Fatalf("Encode(%q): Push(%d) = %q, not valid UTF-8", text, id, s)
			}
			streamed.WriteString(s)
		}
		streamed.WriteString(d.Flush())
		if streamed.String() != got {
			t.Fatalf("Encode(%q): streamed %q, Decode %q", text, streamed.String(), got)
		}
	})
}

// probes are the texts a fuzzed tokenizer that loads must handle.
var probes = []string{"", "Hello world!", "  the\tin a\n", "中文 😀", "\xff\xfe", "<s>"}

// checkLoaded checks a tokenizer that loaded from fuzzed bytes: it encodes and decodes
// without panicking, within its vocabulary, and WriteJSON gives a tokenizer.json that
// LoadJSON reads back to the same tokenizer (identical, ranks too, when exactRanks).
func checkLoaded(t *testing.T, tok *Tokenizer, exactRanks bool) {
	n := tok.VocabSize()
	for _, id := range []int{tok.UNK(), tok.BOS(), tok.EOS()} {
		if id < 0 || id >= n {
			t.Fatalf("special id %d outside %d pieces", id, n)
		}
	}
	for _, p := range probes {
		ids := tok.Encode(p)
		for _, id := range ids {
			if id < 0 || id >= n {
				t.Fatalf("Encode(%q) has id %d outside %d pieces", p, id, n)
			}
		}
		if got, want := tok.Decode(ids), roundTrip(p); got != want {
			t.Fatalf("Decode(Encode(%q)) = %q, want %q", p, got, want)
		}
	}
	var buf bytes.Buffer
	if err := tok.WriteJSON(&buf); err != nil {
		if strings.Contains(err.Error(), "cannot record bos") {
			return // bos and eos are not named <s> and </s>: refused, as documented
		}
		t.Fatal(err)
	}
	back, err := parseJSON(buf.Bytes())
	if err != nil {
		t.Fatalf("LoadJSON(WriteJSON): %v", err)
	}
	if exactRanks {
		if !reflect.DeepEqual(back, tok) {
			t.Fatalf("LoadJSON(WriteJSON(t)) differs from t: %s", sameTokenizer(back, tok, true))
		}
	} else if diff := sameTokenizer(back, tok, false); diff != "" {
		t.Fatalf("LoadJSON(WriteJSON(t)) differs from t: %s", diff)
	}
}

// fuzzing reports whether the test runs under -fuzz. The golden files are seeds only
// for go test: under -fuzz, mutating and minimizing half a megabyte per input would
// leave the fuzzer crawling.
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// Mutated tokenizer.model bytes give an error or a working tokenizer, never a panic.
func FuzzLoadModel(f *testing.F) {
	f.Add(smallModel())
	if !fuzzing() {
		f.Add(mustRead(f, goldenModelPath))
	}
	f.Add(smallModel()[:100])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseModel(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of several lines: %q", err)
			}
			return
		}
		checkLoaded(t, tok, false)
	})
}

// Mutated tokenizer.json bytes give an error or a working tokenizer, never a panic.
func FuzzLoadJSON(f *testing.F) {
	var small bytes.Buffer
	if err := mustParseModel(f, smallModel()).WriteJSON(&small); err != nil {
		f.Fatal(err)
	}
	f.Add(small.Bytes())
	if !fuzzing() {
		f.Add(mustRead(f, goldenJSONPath))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseJSON(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of several lines: %q", err)
			}
			return
		}
		checkLoaded(t, tok, true)
	})
}
