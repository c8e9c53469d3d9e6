package tokenizer

import "unicode/utf8"

// Decode turns ids into text as the Hugging Face LLaMA decoder does: "▁" becomes a space,
// byte pieces are fused into UTF-8, and one leading space of the whole text is stripped
// (the dummy prefix). Special tokens (bos, eos, unk) and ids outside the vocabulary
// decode to "". Bytes that do not form valid UTF-8 become U+FFFD, one per byte.
func (t *Tokenizer) Decode(ids []int) string {
	d := t.NewStreamDecoder()
	for _, id := range ids {
		d.pending = append(d.pending, t.surfaceOf(id)...)
	}
	return d.Flush()
}

// surfaceOf is the bytes id contributes to the decoded text.
func (t *Tokenizer) surfaceOf(id int) string {
	if id < 0 || id >= len(t.surface) {
		return ""
	}
	return t.surface[id]
}

// StreamDecoder decodes generated ids one at a time. The concatenation of everything
// Push and Flush return is Decode of all the pushed ids; no piece of text it returns
// ends in the middle of a UTF-8 character, so each can be shown as it comes.
type StreamDecoder struct {
	t       *Tokenizer
	pending []byte // bytes of an unfinished UTF-8 character, held back until it completes
	started bool   // a character has been handed out: the leading space is no longer stripped
}

// NewStreamDecoder starts decoding a new sequence.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{t: t}
}

// Push adds one id and returns the text it completes, possibly "" (a special token, or a
// byte piece in the middle of a character).
func (d *StreamDecoder) Push(id int) string {
	d.pending = append(d.pending, d.t.surfaceOf(id)...)
	return d.drain(false)
}

// Flush returns what is still held back: the bytes of an unfinished character, each
// as U+FFFD. The decoder can then start a new sequence.
func (d *StreamDecoder) Flush() string {
	s := d.drain(true)
	d.started = false
	return s
}

// drain hands out the complete characters of pending (all of them when final), replacing
// each byte of an invalid sequence by U+FFFD and stripping the leading space.
func (d *StreamDecoder) drain(final bool) string {
	p := d.pending
	out := make([]byte, 0, len(p))
	for len(p) > 0 && (final || utf8.FullRune(p)) {
		r, size := utf8.DecodeRune(p)
		first := !d.started
		d.started = true
		switch {
		case first && r == ' ' && d.t.addDummyPrefix:
			// The Strip decoder: drop the space the dummy prefix put there.
		case r == utf8.RuneError && size == 1:
			out = utf8.AppendRune(out, utf8.RuneError)
		default:
			out = append(out, p[:size]...)
		}
		p = p[size:]
	}
	d.pending = append(d.pending[:0], p...)
	return string(out)
}
