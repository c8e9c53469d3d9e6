package tokenizer

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

const golden = "../../testdata/golden"

var (
	goldenModelPath = filepath.Join(golden, "tokenizer", "tokenizer.model")
	goldenJSONPath  = filepath.Join(golden, "tiny-chat", "model", "tokenizer.json")
)

// The golden tokenizers are loaded once per test binary: every test only reads them.
var (
	loadGoldenModel = sync.OnceValues(func() (*Tokenizer, error) { return LoadModel(goldenModelPath) })
	loadGoldenJSON  = sync.OnceValues(func() (*Tokenizer, error) { return LoadJSON(goldenJSONPath) })
)

func goldenModel(tb testing.TB) *Tokenizer {
	tb.Helper()
	t, err := loadGoldenModel()
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func goldenJSON(tb testing.TB) *Tokenizer {
	tb.Helper()
	t, err := loadGoldenJSON()
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// goldenTokenizers are both loaders' views of the one LLaMA tokenizer.
func goldenTokenizers(tb testing.TB) []struct {
	name string
	tok  *Tokenizer
} {
	return []struct {
		name string
		tok  *Tokenizer
	}{{"tokenizer.model", goldenModel(tb)}, {"tokenizer.json", goldenJSON(tb)}}
}

type tokenizerCase struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

// goldenCases are the 600 strings of tokenizer/cases.json with SentencePiece's ids.
func goldenCases(tb testing.TB) []tokenizerCase {
	tb.Helper()
	var cases []tokenizerCase
	readJSON(tb, filepath.Join(golden, "tokenizer", "cases.json"), &cases)
	if len(cases) != 600 {
		tb.Fatalf("cases.json has %d cases, want 600", len(cases))
	}
	return cases
}

func readJSON(tb testing.TB, path string, v any) {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
}

// roundTrip is what Decode(Encode(s)) must give: s with each invalid UTF-8 byte as
// U+FFFD (Encode's normalizer) and "▁" as a space (Decode cannot tell it from one).
func roundTrip(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r) // RuneError for an invalid byte, size 1
		i += size
	}
	return strings.ReplaceAll(b.String(), spaceSymbol, " ")
}

// idOf is the id of piece p, failing the test when there is none.
func idOf(tb testing.TB, t *Tokenizer, p string) int {
	tb.Helper()
	for id, q := range t.pieces {
		if q == p {
			return id
		}
	}
	tb.Fatalf("no piece %q", p)
	return -1
}

func equalIDs(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkOneLineError checks that err is an error of one line containing every want.
func checkOneLineError(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	msg := err.Error()
	t.Log(msg)
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
}

// A SentencePiece ModelProto writer, to build small models and broken ones.

type testPiece struct {
	piece string
	score float32
	typ   int // 0: leave the type out (NORMAL by default)
}

// testVocab is <unk>, <s>, </s>, the 256 byte pieces, then normal.
func testVocab(normal ...testPiece) []testPiece {
	v := []testPiece{{"<unk>", 0, typeUnknown}, {"<s>", 0, typeControl}, {"</s>", 0, typeControl}}
	for b := 0; b < 256; b++ {
		v = append(v, testPiece{fmt.Sprintf("<0x%02X>", b), 0, typeByte})
	}
	return append(v, normal...)
}

// normalPieces gives pieces scores -0, -1, -2, … in order, as SentencePiece BPE does.
func normalPieces(pieces ...string) []testPiece {
	var out []testPiece
	for i, p := range pieces {
		out = append(out, testPiece{piece: p, score: -float32(i), typ: typeNormal})
	}
	return out
}

type protoMsg []byte

func (m protoMsg) varint(num int, v uint64) protoMsg {
	m = binary.AppendUvarint(m, uint64(num)<<3|wireVarint)
	return binary.AppendUvarint(m, v)
}

func (m protoMsg) bytes(num int, b []byte) protoMsg {
	m = binary.AppendUvarint(m, uint64(num)<<3|wireBytes)
	m = binary.AppendUvarint(m, uint64(len(b)))
	return append(m, b...)
}

func (m protoMsg) float(num int, f float32) protoMsg {
	m = binary.AppendUvarint(m, uint64(num)<<3|wireFixed32)
	return binary.LittleEndian.AppendUint32(m, math.Float32bits(f))
}

// llamaTrainerSpec is the trainer_spec of the LLaMA model: BPE, byte fallback, unk 0,
// bos 1, eos 2, pad -1.
func llamaTrainerSpec() protoMsg {
	return protoMsg(nil).varint(trainerModelType, modelTypeBPE).varint(trainerByteFallback, 1).
		varint(trainerUnkID, 0).varint(trainerBosID, 1).varint(trainerEosID, 2).varint(43, math.MaxUint64)
}

// llamaNormalizerSpec is the normalizer_spec of the LLaMA model: identity, dummy
// prefix, whitespace kept.
func llamaNormalizerSpec() protoMsg {
	return protoMsg(nil).bytes(normalizerName, []byte("identity")).varint(normalizerAddDummyPrefix, 1).
		varint(normalizerRemoveExtraWhitespaces, 0).varint(normalizerEscapeWhitespaces, 1)
}

func encodeModel(pieces []testPiece, trainer, normalizer protoMsg) []byte {
	var m protoMsg
	for _, p := range pieces {
		pm := protoMsg(nil).bytes(pieceText, []byte(p.piece)).float(pieceScore, p.score)
		if p.typ != 0 {
			pm = pm.varint(pieceType, uint64(p.typ))
		}
		m = m.bytes(modelPieces, pm)
	}
	if trainer != nil {
		m = m.bytes(modelTrainerSpec, trainer)
	}
	if normalizer != nil {
		m = m.bytes(modelNormalizerSpec, normalizer)
	}
	return m
}

// smallModel is a valid little LLaMA-like model: a few letters, "▁" and their merges.
func smallModel() []byte {
	normal := normalPieces("▁t", "he", "▁the", "▁a", "▁▁", "in", "▁in", "▁", "t", "h", "e", "a", "i", "n")
	return encodeModel(testVocab(normal...), llamaTrainerSpec(), llamaNormalizerSpec())
}

func mustParseModel(tb testing.TB, data []byte) *Tokenizer {
	tb.Helper()
	t, err := parseModel(data)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// sameTokenizer reports how a and b differ as tokenizers, "" when they do not: the same
// pieces, kinds, special ids, dummy prefix and merge pairs. With ranks too when
// compareRanks (a tokenizer.model's score ranks differ from a merge list's indices).
func sameTokenizer(a, b *Tokenizer, compareRanks bool) string {
	switch {
	case !reflect.DeepEqual(a.pieces, b.pieces):
		return "pieces differ"
	case !reflect.DeepEqual(a.kinds, b.kinds):
		return "piece kinds differ"
	case !reflect.DeepEqual(a.surface, b.surface) || a.byteIDs != b.byteIDs || a.asciiIDs != b.asciiIDs || !reflect.DeepEqual(a.normalIDs, b.normalIDs):
		return "lookup tables differ"
	case a.unk != b.unk || a.bos != b.bos || a.eos != b.eos:
		return fmt.Sprintf("unk, bos, eos: %d %d %d against %d %d %d", a.unk, a.bos, a.eos, b.unk, b.bos, b.eos)
	case a.addDummyPrefix != b.addDummyPrefix:
		return fmt.Sprintf("addDummyPrefix %v against %v", a.addDummyPrefix, b.addDummyPrefix)
	case len(a.merges) != len(b.merges):
		return fmt.Sprintf("%d merges against %d", len(a.merges), len(b.merges))
	}
	for k, ma := range a.merges {
		mb, ok := b.merges[k]
		if !ok || ma.result != mb.result || (compareRanks && ma.rank != mb.rank) {
			return fmt.Sprintf("merge %q %q: %+v against %+v (present %v)", a.pieces[k>>32], a.pieces[uint32(k)], ma, mb, ok)
		}
	}
	return ""
}
