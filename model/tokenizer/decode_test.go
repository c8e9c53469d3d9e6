package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		name   string
		pieces []string
		want   string
	}{
		{"leading space stripped", []string{"▁Hello", "▁world", "!"}, "Hello world!"},
		{"only one space stripped", []string{"▁▁", "▁Hi"}, "  Hi"},
		{"special tokens are empty", []string{"<s>", "▁Hi", "<unk>", "</s>"}, "Hi"},
		{"bytes fused into UTF-8", []string{"▁Hi", "▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"}, "Hi 😀"},
		{"first character a byte space", []string{"<0x20>", "▁a"}, " a"}, // Strip runs after Fuse
		{"byte run cut short", []string{"▁a", "<0xE4>", "<0xB8>", "▁b"}, "a\uFFFD\uFFFD b"},
		{"byte run cut short at the end", []string{"▁a", "<0xF0>", "<0x9F>"}, "a\uFFFD\uFFFD"},
		{"valid then invalid byte", []string{"<0xE4>", "<0xB8>", "<0xAD>", "<0xFF>"}, "中\uFFFD"},
		{"lone continuation byte", []string{"<0x80>", "▁x"}, "\uFFFD x"},
		{"literal underline piece", []string{"▁", "▁"}, " "},
		{"nothing", nil, ""},
	} {
		for _, tk := range goldenTokenizers(t) {
			t.Run(tk.name+"/"+c.name, func(t *testing.T) {
				ids := make([]int, len(c.pieces))
				for i, p := range c.pieces {
					ids[i] = idOf(t, tk.tok, p)
				}
				if got := tk.tok.Decode(ids); got != c.want {
					t.Errorf("Decode(%q) = %q, want %q", c.pieces, got, c.want)
				}
			})
		}
	}
}

func TestDecodeIDsOutOfRange(t *testing.T) {
	tok := goldenModel(t)
	hi := idOf(t, tok, "▁Hi")
	if got := tok.Decode([]int{-1, hi, 32000, 1 << 40}); got != "Hi" {
		t.Errorf("Decode = %q, want %q", got, "Hi")
	}
}

// The stream decoder holds back the bytes of an unfinished character, and hands out
// each character as soon as its last byte arrives.
func TestStreamDecoder(t *testing.T) {
	type push struct {
		piece, want string
	}
	for _, c := range []struct {
		name      string
		pushes    []push
		wantFlush string
	}{
		{"words", []push{{"▁Hello", "Hello"}, {"▁world", " world"}, {"!", "!"}}, ""},
		{"CJK in byte pieces", []push{{"▁", ""}, {"<0xE9>", ""}, {"<0xBE>", ""}, {"<0x98>", "龘"}, {"▁ok", " ok"}}, ""},
		{"emoji in byte pieces", []push{{"▁Hi", "Hi"}, {"▁", " "}, {"<0xF0>", ""}, {"<0x9F>", ""}, {"<0x98>", ""}, {"<0x80>", "😀"}}, ""},
		{"two characters back to back", []push{{"<0xE4>", ""}, {"<0xB8>", ""}, {"<0xAD>", "中"}, {"<0xF0>", ""}, {"<0xA0>", ""}, {"<0x80>", ""}, {"<0x80>", "𠀀"}}, ""},
		{"the leading space waits for the first character", []push{{"<s>", ""}, {"▁", ""}, {"▁", " "}}, ""},
		{"character cut short by a piece", []push{{"<0xE4>", ""}, {"<0xB8>", ""}, {"▁a", "\uFFFD\uFFFD a"}}, ""},
		{"character cut short by a byte", []push{{"<0xE4>", ""}, {"<0x41>", "\uFFFDA"}}, ""},
		{"invalid byte at once", []push{{"<0xFF>", "\uFFFD"}, {"<0x80>", "\uFFFD"}}, ""},
		{"character cut short by the end", []push{{"▁Hi", "Hi"}, {"<0xF0>", ""}, {"<0x9F>", ""}}, "\uFFFD\uFFFD"},
		{"special tokens", []push{{"<s>", ""}, {"▁Hi", "Hi"}, {"</s>", ""}}, ""},
	} {
		tok := goldenModel(t)
		t.Run(c.name, func(t *testing.T) {
			d := tok.NewStreamDecoder()
			var ids []int
			var all strings.Builder
			for i, p := range c.pushes {
				id := idOf(t, tok, p.piece)
				ids = append(ids, id)
				got := d.Push(id)
				if got != p.want {
					t.Errorf("push %d (%q) = %q, want %q", i, p.piece, got, p.want)
				}
				all.WriteString(got)
			}
			if got := d.Flush(); got != c.wantFlush {
				t.Errorf("Flush = %q, want %q", got, c.wantFlush)
			}
			all.WriteString(c.wantFlush)
			if want := tok.Decode(ids); all.String() != want {
				t.Errorf("pushes+flush = %q, Decode = %q", all.String(), want)
			}
		})
	}
}

// For every golden id sequence, and for every prefix length at which the stream is
// flushed, the pushes and the flush give Decode, and no push ends inside a character.
func TestStreamDecoderMatchesDecode(t *testing.T) {
	tok := goldenModel(t)
	var seqs [][]int
	for _, c := range goldenCases(t) {
		seqs = append(seqs, c.IDs)
	}
	// A made-up sequence of byte pieces for several multi-byte characters.
	var bytesOnly []int
	for _, b := range []byte("▁中文 😀👍🏽 é") {
		bytesOnly = append(bytesOnly, int(tok.byteIDs[b]))
	}
	seqs = append(seqs, bytesOnly)

	for _, ids := range seqs {
		d := tok.NewStreamDecoder()
		var all strings.Builder
		for _, id := range ids {
			s := d.Push(id)
			if !utf8.ValidString(s) {
				t.Fatalf("ids %v: Push(%d) = %q, not valid UTF-8", ids, id, s)
			}
			all.WriteString(s)
		}
		all.WriteString(d.Flush())
		if want := tok.Decode(ids); all.String() != want {
			t.Fatalf("ids %v: pushes+flush = %q, Decode = %q", ids, all.String(), want)
		}
	}
}

// After Flush the decoder starts a new sequence: its leading space is stripped again.
func TestStreamDecoderReuse(t *testing.T) {
	tok := goldenModel(t)
	hi := idOf(t, tok, "▁Hi")
	d := tok.NewStreamDecoder()
	for round := 0; round < 2; round++ {
		if got := d.Push(hi); got != "Hi" {
			t.Errorf("round %d: Push = %q, want %q", round, got, "Hi")
		}
		if got := d.Flush(); got != "" {
			t.Errorf("round %d: Flush = %q, want \"\"", round, got)
		}
	}
}
