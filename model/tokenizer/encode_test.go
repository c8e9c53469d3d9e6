package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// referenceEncode is SentencePiece's BPE written the slow, obvious way from its
// description, straight from the model's pieces and scores: start from the characters of
// "▁" + text (spaces as "▁"); while some adjacent pair concatenates to a NORMAL piece,
// merge the pair whose piece has the highest score, the leftmost on ties; characters
// outside the vocabulary become byte pieces. Quadratic: for short texts only.
// referenceEncoder's function starts from "▁" + text, as Encode; prefix false leaves the
// "▁" out, as EncodeAfterSpecial.
func referenceEncoder(m *spModel) func(text string) []int {
	return referenceEncoderPrefix(m, true)
}

func referenceEncoderPrefix(m *spModel, prefix bool) func(text string) []int {
	ids := map[string]int{}
	for id, p := range m.pieces {
		if m.types[id] == typeNormal || m.types[id] == typeByte {
			ids[p] = id
		}
	}
	return func(text string) []int { return referenceEncode(m, ids, text, prefix) }
}

func referenceEncode(m *spModel, ids map[string]int, text string, prefix bool) []int {
	isNormal := func(p string) (int, bool) {
		id, ok := ids[p]
		return id, ok && m.types[id] == typeNormal
	}
	if text == "" {
		return []int{}
	}
	var syms []string
	norm := strings.ReplaceAll(text, " ", spaceSymbol)
	if prefix {
		norm = spaceSymbol + norm
	}
	for _, r := range norm {
		syms = append(syms, string(r))
	}
	for {
		best, bestScore := -1, float32(0)
		for i := 0; i+1 < len(syms); i++ {
			if id, ok := isNormal(syms[i] + syms[i+1]); ok && (best < 0 || m.scores[id] > bestScore) {
				best, bestScore = i, m.scores[id]
			}
		}
		if best < 0 {
			break
		}
		merged := syms[best] + syms[best+1]
		syms = append(syms[:best+1], syms[best+2:]...)
		syms[best] = merged
	}
	var out []int
	for _, s := range syms {
		if id, ok := isNormal(s); ok {
			out = append(out, id)
			continue
		}
		for _, b := range []byte(s) {
			out = append(out, ids[fmt.Sprintf("<0x%02X>", b)])
		}
	}
	return out
}

// The heap-and-list BPE gives what the reference gives, on the LLaMA vocabulary, with the
// dummy prefix (Encode) and without (EncodeAfterSpecial).
func TestEncodeMatchesReferenceLLaMA(t *testing.T) {
	m, err := readModelProto(mustRead(t, goldenModelPath))
	if err != nil {
		t.Fatal(err)
	}
	tok := goldenModel(t)
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("abcdefghijklmnopqrstuvwxyz ETAOIN    0123456789.,;:!?'\"()-_\n\t▁中文字日本語éüß😀🦙👍🏽\u200d")
	for _, enc := range []struct {
		name   string
		encode func(string) []int
		prefix bool
	}{{"Encode", tok.Encode, true}, {"EncodeAfterSpecial", tok.EncodeAfterSpecial, false}} {
		reference := referenceEncoderPrefix(m, enc.prefix)
		for n := 0; n < 1000; n++ {
			text := randomText(rng, alphabet, 1+rng.IntN(40))
			if got, want := enc.encode(text), reference(text); !equalIDs(got, want) {
				t.Fatalf("%s(%q) = %v, reference %v", enc.name, text, got, want)
			}
		}
	}
}

// EncodeAfterSpecial is the BPE without the dummy prefix, for text after a special token:
// a leading space then plays the prefix's part, and "USER" right after "</s>" is not
// "▁USER" (the ids the vicuna template depends on).
func TestEncodeAfterSpecial(t *testing.T) {
	tok := goldenModel(t)
	for _, text := range []string{"USER: hi ASSISTANT:", "x", "  two", "中文😀"} {
		if got, want := tok.EncodeAfterSpecial(" "+text), tok.Encode(text); !equalIDs(got, want) {
			t.Errorf("EncodeAfterSpecial(%q) = %v, want Encode(%q) = %v", " "+text, got, text, want)
		}
	}
	user := tok.EncodeAfterSpecial("USER:")
	if equalIDs(user, tok.Encode("USER:")) || tok.Decode(user) != "USER:" {
		t.Errorf("EncodeAfterSpecial(\"USER:\") = %v (%q), Encode = %v: want other pieces of the same text", user, tok.Decode(user), tok.Encode("USER:"))
	}
	if got := tok.EncodeAfterSpecial(""); len(got) != 0 {
		t.Errorf("EncodeAfterSpecial(\"\") = %v, want no ids", got)
	}
}

// The same on small vocabularies whose scores tie, where the leftmost pair must merge
// first: the LLaMA scores are all distinct, so they cannot check that.
func TestEncodeMatchesReferenceTies(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "b", "▁"}
	for v := 0; v < 30; v++ {
		var normal []testPiece
		for _, c := range alphabet {
			normal = append(normal, testPiece{c, -10, typeNormal})
		}
		// Some strings of 2 to 4 characters, with scores from a small set so they tie.
		seen := map[string]bool{}
		for n := 0; n < 25; n++ {
			var p string
			for k := 2 + rng.IntN(3); k > 0; k-- {
				p += alphabet[rng.IntN(len(alphabet))]
			}
			if !seen[p] {
				seen[p] = true
				normal = append(normal, testPiece{p, -float32(rng.IntN(3)), typeNormal})
			}
		}
		data := encodeModel(testVocab(normal...), llamaTrainerSpec(), llamaNormalizerSpec())
		m, err := readModelProto(data)
		if err != nil {
			t.Fatal(err)
		}
		tok, reference := mustParseModel(t, data), referenceEncoder(m)
		for n := 0; n < 40; n++ {
			text := randomText(rng, []rune("ab c"), 1+rng.IntN(16))
			if got, want := tok.Encode(text), reference(text); !equalIDs(got, want) {
				t.Fatalf("vocabulary %d: Encode(%q) = %v, reference %v", v, text, got, want)
			}
		}
	}
}

func randomText(rng *rand.Rand, alphabet []rune, n int) string {
	r := make([]rune, n)
	for i := range r {
		r[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(r)
}

// longText is about n bytes of the golden strings (mixed scripts, emoji, spaces).
func longText(tb testing.TB, n int) string {
	var b strings.Builder
	for b.Len() < n {
		for _, c := range goldenCases(tb) {
			b.WriteString(c.Text)
			b.WriteString("  ")
		}
	}
	return b.String()[:n]
}

// A 100 KB text is one BPE word (there is no pre-tokenizer): both loaders agree on it and
// it round-trips. So does a long run of spaces, the worst case for merge candidates.
func TestEncodeLongText(t *testing.T) {
	for _, text := range []string{longText(t, 100_000), strings.Repeat(" ", 20_000), strings.Repeat("ab", 20_000)} {
		m, j := goldenModel(t), goldenJSON(t)
		ids := m.Encode(text)
		if !equalIDs(ids, j.Encode(text)) {
			t.Errorf("%d bytes: the loaders' ids differ", len(text))
		}
		if got, want := m.Decode(ids), roundTrip(text); got != want {
			t.Errorf("%d bytes: Decode(Encode(text)) differs from text", len(text))
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	tok := goldenModel(b)
	cases := goldenCases(b)
	b.Run("cases", func(b *testing.B) {
		n := 0
		for _, c := range cases {
			n += len(c.Text)
		}
		b.SetBytes(int64(n))
		for b.Loop() {
			for _, c := range cases {
				tok.Encode(c.Text)
			}
		}
	})
	for _, size := range []int{10_000, 100_000} {
		text := longText(b, size)
		b.Run(fmt.Sprintf("text-%dKB", size/1000), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				tok.Encode(text)
			}
		})
	}
	spaces := strings.Repeat(" ", 100_000)
	b.Run("spaces-100KB", func(b *testing.B) {
		b.SetBytes(int64(len(spaces)))
		for b.Loop() {
			tok.Encode(spaces)
		}
	})
}
