package tokenizer

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
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
		if got, want := tok.Decode(ids), roundTrip(p); got != want && !spelledInBytes(tok, got, want) {
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

// spelledInBytes reports whether got is want but for "▁" kept where a space was expected,
// which is right for a vocabulary without a "▁" piece: a lone space is then spelled in
// byte pieces, which decode to "▁" itself (Hugging Face's LLaMA decoder replaces "▁" in
// pieces before it fuses byte pieces), and so is not stripped as the leading space either.
// Every real LLaMA vocabulary has the piece; fuzzed ones need not.
func spelledInBytes(tok *Tokenizer, got, want string) bool {
	for id, p := range tok.pieces {
		if p == spaceSymbol && tok.kinds[id] == kindNormal {
			return false
		}
	}
	spaced := strings.ReplaceAll(got, spaceSymbol, " ")
	return spaced == want || (tok.addDummyPrefix && spaced == " "+want)
}

// fuzzing reports whether the test runs under -fuzz. The golden files are seeds only
// for go test: under -fuzz, mutating and minimizing half a megabyte per input would
// leave the fuzzer crawling.
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// byteMarker stands for the 256 byte-fallback pieces in the fuzz inputs of FuzzLoadModel
// and FuzzLoadJSON; withBytePieces expands its first occurrence. Every loadable tokenizer
// needs all 256 pieces, several kilobytes that are always the same: inputs that carry them
// literally are kilobytes long, and the fuzzer spends its time minimising them (a
// candidate per byte, minutes per new input) rather than exploring, about 1,300
// executions a minute. With the marker the inputs are a few hundred bytes of what
// matters (the normal pieces, merges, specs), and a mutated marker still explores a
// vocabulary without them.
const byteMarker = "@BYTES@"

// withBytePieces returns data with its first byteMarker replaced by pieces.
func withBytePieces(data, pieces []byte) []byte {
	return bytes.Replace(data, []byte(byteMarker), pieces, 1)
}

// bytePiecesProto is the model proto fields of the 256 byte pieces at ids 3…258 (after
// <unk>, <s>, </s>), as testVocab lays them out.
func bytePiecesProto() []byte {
	return encodeModel(testVocab()[3:], nil, nil)
}

// bytePiecesJSON is the tokenizer.json vocabulary entries of the same pieces.
func bytePiecesJSON() []byte {
	var b bytes.Buffer
	for i := range 256 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"<0x%02X>":%d`, i, 3+i)
	}
	return b.Bytes()
}

// markedSeed is seed with the expansion of byteMarker replaced by the marker: the short
// form of a valid input. It fails the fuzz setup if seed does not hold the expansion.
func markedSeed(f *testing.F, seed, pieces []byte) []byte {
	if !bytes.Contains(seed, pieces) {
		f.Fatal("the seed does not hold the byte pieces as expected")
	}
	return bytes.Replace(seed, pieces, []byte(byteMarker), 1)
}

// Mutated tokenizer.model bytes give an error or a working tokenizer, never a panic.
func FuzzLoadModel(f *testing.F) {
	pieces := bytePiecesProto()
	f.Add(markedSeed(f, smallModel(), pieces))
	if !fuzzing() {
		f.Add(smallModel())
		f.Add(mustRead(f, goldenModelPath))
	}
	f.Add(smallModel()[:100])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseModel(withBytePieces(data, pieces))
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
	var compact bytes.Buffer
	if err := json.Compact(&compact, small.Bytes()); err != nil {
		f.Fatal(err)
	}
	pieces := bytePiecesJSON()
	// The same tokenizer with only the keys LoadJSON reads: half the bytes to minimise.
	f.Add([]byte(`{"added_tokens":[{"id":0,"content":"<unk>","special":true},{"id":1,"content":"<s>","special":true},` +
		`{"id":2,"content":"</s>","special":true}],"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend",` +
		`"prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},"decoder":{"type":"Sequence",` +
		`"decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},` +
		`{"type":"Strip","content":" ","start":1,"stop":0}]},"model":{"type":"BPE","unk_token":"<unk>","fuse_unk":true,` +
		`"byte_fallback":true,"vocab":{"<unk>":0,"<s>":1,"</s>":2,` + byteMarker + `,"▁t":259,"he":260,"▁the":261,` +
		`"▁a":262,"▁▁":263,"in":264,"▁in":265,"▁":266,"t":267,"h":268,"e":269,"a":270,"i":271,"n":272},` +
		`"merges":["▁ t","h e","▁t he","▁ a","▁ ▁","i n","▁ in"]}}`))
	if !fuzzing() {
		f.Add(markedSeed(f, compact.Bytes(), pieces)) // what WriteJSON writes, in short
		f.Add(small.Bytes())
		f.Add(mustRead(f, goldenJSONPath))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseJSON(withBytePieces(data, pieces))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of several lines: %q", err)
			}
			return
		}
		checkLoaded(t, tok, true)
	})
}
