package tokenizer

import "unicode/utf8"

// symbol is one BPE symbol: the bytes norm[start:end] of the normalized text, linked to
// its live neighbours. Symbols are indexed by the character they start at; a symbol
// only ever grows to the right, by absorbing its right neighbour.
type symbol struct {
	start, end int   // end == start: absorbed by its left neighbour
	prev, next int   // neighbour indices, -1 at the ends
	id         int32 // normal piece id, or -1 for a character outside the vocabulary
}

// candidate is a possible merge of symbol left with its right neighbour.
type candidate struct {
	rank   int32 // lower merges first
	result int32 // id of the merged piece
	left   int   // index of the left symbol; on equal rank the leftmost merges first
	size   int   // byte length of the merged piece when the candidate was made
}

// Encode tokenizes text without bos: "▁" dummy prefix, spaces as "▁", BPE over the
// whole text, byte fallback for characters outside the vocabulary.
//
// It is SentencePiece's BPE: a heap of adjacent pairs ordered by merge rank, then by
// position, and a linked list of symbols, so the cost is O(n log n) in the text length.
// There is no pre-tokenizer to cut the text into words, so this matters for long texts.
func (t *Tokenizer) Encode(text string) []int { return t.encode(text, t.addDummyPrefix) }

// EncodeAfterSpecial tokenizes text that follows a special token in a prompt (the words
// after a "</s>" that a chat template puts between turns): as Encode, but never with the
// dummy prefix. That is what Hugging Face's LlamaTokenizer does with legacy=false (the
// setting of vicuna-7b-v1.5's tokenizer_config.json): it splits the special tokens out
// of the text and prefixes "▁" only to the start of the whole text, so "</s>USER" gives
// eos then the pieces of "USER", not of "▁USER".
func (t *Tokenizer) EncodeAfterSpecial(text string) []int { return t.encode(text, false) }

func (t *Tokenizer) encode(text string, dummyPrefix bool) []int {
	if text == "" {
		return []int{} // SentencePiece adds no dummy prefix to empty text
	}
	norm, syms := t.normalize(text, dummyPrefix)

	heap := make(candidateHeap, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		heap.add(t, syms, i, i+1)
	}
	heap.init()
	for len(heap) > 0 {
		c := heap.pop()
		left := &syms[c.left]
		if left.end == left.start || left.next < 0 {
			continue // left was absorbed, or has no right neighbour any more
		}
		right := &syms[left.next]
		// Symbols only grow, and left keeps its start: the same total size means
		// the same two symbols as when the candidate was made.
		if (left.end-left.start)+(right.end-right.start) != c.size {
			continue
		}
		left.end, left.id, left.next = right.end, c.result, right.next
		right.end = right.start
		if left.next >= 0 {
			syms[left.next].prev = c.left
			heap.push(t, syms, c.left, left.next)
		}
		if left.prev >= 0 {
			heap.push(t, syms, left.prev, c.left)
		}
	}

	ids := make([]int, 0, len(syms))
	for i := 0; i >= 0; i = syms[i].next { // symbol 0 is never absorbed
		s := syms[i]
		if s.id >= 0 {
			ids = append(ids, int(s.id))
			continue
		}
		for _, b := range norm[s.start:s.end] {
			ids = append(ids, int(t.byteIDs[b]))
		}
	}
	return ids
}

// normalize applies SentencePiece's identity normalizer (dummy prefix, spaces escaped as
// "▁", each invalid UTF-8 byte replaced by U+FFFD) and splits the result into one
// symbol per character.
func (t *Tokenizer) normalize(text string, dummyPrefix bool) ([]byte, []symbol) {
	norm := make([]byte, 0, len(text)+len(spaceSymbol))
	syms := make([]symbol, 0, len(text)+1)
	appendSymbol := func(start int) {
		s := symbol{start: start, end: len(norm), prev: len(syms) - 1, next: len(syms) + 1, id: -1}
		if s.end-s.start == 1 {
			s.id = t.asciiIDs[norm[s.start]]
		} else if id, ok := t.normalIDs[string(norm[s.start:s.end])]; ok {
			s.id = id
		}
		syms = append(syms, s)
	}
	if dummyPrefix {
		norm = append(norm, spaceSymbol...)
		appendSymbol(0)
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		start := len(norm)
		switch {
		case r == ' ':
			norm = append(norm, spaceSymbol...)
		case r == utf8.RuneError && size == 1:
			norm = utf8.AppendRune(norm, utf8.RuneError)
		default:
			norm = append(norm, text[i:i+size]...)
		}
		appendSymbol(start)
		i += size
	}
	syms[len(syms)-1].next = -1
	return norm, syms
}

// candidateHeap is a binary min-heap of merge candidates by (rank, left).
type candidateHeap []candidate

// add appends the candidate for symbols left and right, if their pieces merge, without
// restoring the heap order (call init afterwards).
func (h *candidateHeap) add(t *Tokenizer, syms []symbol, left, right int) {
	l, r := syms[left], syms[right]
	if l.id < 0 || r.id < 0 {
		return
	}
	if m, ok := t.merges[pairKey(l.id, r.id)]; ok {
		*h = append(*h, candidate{rank: m.rank, result: m.result, left: left, size: r.end - l.start})
	}
}

// push adds the candidate for symbols left and right, if their pieces merge.
func (h *candidateHeap) push(t *Tokenizer, syms []symbol, left, right int) {
	n := len(*h)
	h.add(t, syms, left, right)
	if len(*h) > n {
		h.up(n)
	}
}

func (h candidateHeap) less(i, j int) bool {
	return h[i].rank < h[j].rank || (h[i].rank == h[j].rank && h[i].left < h[j].left)
}

func (h candidateHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *candidateHeap) pop() candidate {
	old := *h
	top := old[0]
	last := len(old) - 1
	old[0] = old[last]
	*h = old[:last]
	h.down(0)
	return top
}

func (h candidateHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			return
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (h candidateHeap) down(i int) {
	for {
		smallest, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h.less(l, smallest) {
			smallest = l
		}
		if r < len(h) && h.less(r, smallest) {
			smallest = r
		}
		if smallest == i {
			return
		}
		h[i], h[smallest] = h[smallest], h[i]
		i = smallest
	}
}
