// Package tokenizer is the LLaMA SentencePiece BPE tokenizer CogVLM uses (the one of
// vicuna-7b-v1.5: 32000 pieces, byte fallback, unk 0, bos 1, eos 2). It reads both forms
// a checkpoint may ship, the SentencePiece model protobuf (tokenizer.model) and the
// Hugging Face tokenizer.json, and gives the same ids from either.
//
// Encode follows SentencePiece: non-empty text gets a "▁" dummy prefix, every space
// becomes "▁" (runs of spaces are kept), and the whole text is one BPE word. Characters
// outside the vocabulary fall back to <0xNN> byte pieces. Input bytes that are not valid
// UTF-8 become U+FFFD, one per byte, as SentencePiece's normalizer does. Special tokens
// written in the text ("<s>") are plain text, as in SentencePiece; Hugging Face's
// tokenizers would split them out, which is the one known difference between the two.
//
// Decode follows the Hugging Face decoder of the LLaMA tokenizer.json (Replace "▁"→" ",
// ByteFallback, Fuse, Strip one leading space); special tokens decode to "". Byte pieces
// that do not form valid UTF-8 become U+FFFD one per byte, SentencePiece's rule (Hugging
// Face would replace the whole run of byte pieces), so that a StreamDecoder can hand out
// each character as soon as its last byte arrives.
//
// So for every string s, Decode(Encode(s)) is s with invalid bytes replaced by U+FFFD
// and every "▁" (U+2581) turned into a space: the dummy prefix is the one leading space
// that Decode strips, so leading spaces of s survive.
//
// A Tokenizer is immutable once loaded and safe for concurrent use.
package tokenizer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// pieceKind says how a piece takes part in encoding and decoding.
type pieceKind uint8

const (
	kindNormal  pieceKind = iota // text: a character or a BPE merge result
	kindByte                     // <0xNN>: one byte of UTF-8, for characters outside the vocabulary
	kindControl                  // <s>, </s>: never produced by Encode, decodes to ""
	kindUnknown                  // <unk>: never produced by Encode (byte fallback covers every byte), decodes to ""
)

// spaceSymbol is how SentencePiece writes a space inside pieces (U+2581).
const spaceSymbol = "▁"

// mergeRule is what BPE does with one adjacent pair of pieces.
type mergeRule struct {
	rank   int32 // lower merges first; equal ranks merge leftmost first
	result int32 // id of the merged piece
}

// Tokenizer encodes text to LLaMA token ids and decodes them back.
type Tokenizer struct {
	pieces  []string    // id → piece as in the vocabulary ("▁the", "<0x41>", "<s>")
	kinds   []pieceKind // id → kind
	surface []string    // id → decoded bytes: "▁" as " ", a byte piece's byte, "" for special tokens

	normalIDs map[string]int32     // normal pieces: the characters and merge results BPE works with
	asciiIDs  [utf8.RuneSelf]int32 // normalIDs of the one-byte characters, -1 where absent
	byteIDs   [256]int32           // id of <0xNN> for each byte
	merges    map[uint64]mergeRule // pairKey(left, right) → rule

	unk, bos, eos  int
	addDummyPrefix bool // put "▁" before the text and strip one leading space when decoding
}

// Load reads the tokenizer of a checkpoint folder: tokenizer.model when present (what the
// original Vicuna/CogVLM checkpoints ship), else tokenizer.json.
func Load(dir string) (*Tokenizer, error) {
	for _, c := range []struct {
		name string
		load func(string) (*Tokenizer, error)
	}{{"tokenizer.model", LoadModel}, {"tokenizer.json", LoadJSON}} {
		path := filepath.Join(dir, c.name)
		_, err := os.Stat(path)
		if err == nil {
			return c.load(path)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
	}
	return nil, fmt.Errorf("tokenizer: %s has neither tokenizer.model nor tokenizer.json", dir)
}

// VocabSize is the number of pieces (32000 for LLaMA).
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// BOS is the id of the begin-of-sequence token <s>.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS is the id of the end-of-sequence token </s>.
func (t *Tokenizer) EOS() int { return t.eos }

// UNK is the id of <unk>.
func (t *Tokenizer) UNK() int { return t.unk }

// Piece is the vocabulary entry of id ("▁the", "<0x41>", "<s>"), or "" for an id out of range.
func (t *Tokenizer) Piece(id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// pairKey packs two piece ids into one map key.
func pairKey(left, right int32) uint64 { return uint64(uint32(left))<<32 | uint64(uint32(right)) }

// newTokenizer checks the vocabulary that both file formats describe and builds the
// lookup tables; the caller fills t.merges. Errors name the piece at fault; the caller
// adds the file.
func newTokenizer(pieces []string, kinds []pieceKind, unk, bos, eos int, addDummyPrefix bool) (*Tokenizer, error) {
	n := len(pieces)
	if n == 0 {
		return nil, errors.New("the vocabulary is empty")
	}
	if n > 1<<31-1 {
		return nil, fmt.Errorf("the vocabulary has %d pieces, more than %d", n, 1<<31-1)
	}
	t := &Tokenizer{
		pieces:         pieces,
		kinds:          kinds,
		surface:        make([]string, n),
		normalIDs:      make(map[string]int32, n),
		unk:            unk,
		bos:            bos,
		eos:            eos,
		addDummyPrefix: addDummyPrefix,
	}
	for i := range t.asciiIDs {
		t.asciiIDs[i] = -1
	}
	for i := range t.byteIDs {
		t.byteIDs[i] = -1
	}
	seen := make(map[string]int, n)
	for id, p := range pieces {
		switch {
		case p == "":
			return nil, fmt.Errorf("piece %d is empty", id)
		case !utf8.ValidString(p):
			return nil, fmt.Errorf("piece %d %q is not valid UTF-8", id, p)
		}
		if prev, dup := seen[p]; dup {
			return nil, fmt.Errorf("piece %d %q repeats piece %d", id, p, prev)
		}
		seen[p] = id
		switch kinds[id] {
		case kindNormal:
			t.normalIDs[p] = int32(id)
			if len(p) == 1 {
				t.asciiIDs[p[0]] = int32(id)
			}
			t.surface[id] = strings.ReplaceAll(p, spaceSymbol, " ")
		case kindByte:
			b, ok := parseBytePiece(p)
			if !ok {
				return nil, fmt.Errorf("byte piece %d %q is not of the form <0xNN>", id, p)
			}
			t.byteIDs[b] = int32(id) // names are unique, so each byte has one piece
			t.surface[id] = string([]byte{b})
		}
	}
	for b, id := range t.byteIDs {
		if id < 0 {
			return nil, fmt.Errorf("byte fallback needs all 256 byte pieces; <0x%02X> is missing", b)
		}
	}
	for _, s := range []struct {
		name string
		id   int
		want pieceKind
	}{{"unk", unk, kindUnknown}, {"bos", bos, kindControl}, {"eos", eos, kindControl}} {
		if s.id < 0 || s.id >= n {
			return nil, fmt.Errorf("%s id %d is outside the vocabulary of %d pieces", s.name, s.id, n)
		}
		if kinds[s.id] != s.want {
			return nil, fmt.Errorf("%s piece %d %q is not a special token", s.name, s.id, pieces[s.id])
		}
	}
	return t, nil
}

// parseBytePiece reads the byte of a byte-fallback piece "<0xNN>" (upper-case hex, the
// form SentencePiece writes).
func parseBytePiece(p string) (byte, bool) {
	if len(p) != 6 || p[:3] != "<0x" || p[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexDigit(p[3])
	lo, ok2 := hexDigit(p[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
