package model

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// decoderState is the run state of one sequence: the KV cache, sized once for the whole
// sequence, and the activation buffers, sized for the longest forward call (the prompt).
// A decode step uses their first row; nothing is allocated per token.
type decoderState struct {
	cfg      Config
	capacity int // tokens the KV cache holds
	maxRows  int // rows of the activation buffers
	length   int // tokens in the KV cache
	lastPos  int // position id of the last token

	// cached is what the KV cache holds, one entry per token of [0, length): a later
	// prompt reuses the longest prefix that agrees with it (PrefillReuse).
	cached KVTokens

	key, value [][]float32 // per layer (capacity, H): rotated keys, values

	x         []float32      // (maxRows, H) residual stream
	xb        []float32      // (maxRows, H) normed input, then branch output
	q         []float32      // (maxRows, H) rotated queries
	att       []float32      // (maxRows, H) attention output
	gate, up  []float32      // (maxRows, I) MLP hidden
	scores    []float32      // attention scratch (AttentionScratchLen(capacity))
	hidden    []float32      // (H) final-norm output of the last row
	logits    []float32      // (V)
	runs      []ExpertRun    // expert row ranges of the current call
	decodePos []int          // (1) position of a decode step
	decodeID  []int          // (1) token of a decode step
	langRun   [1]ExpertRun   // a decode step: one language row
	observe   LinearObserver // the model's ObserveLinear during the current call
}

// KVTokens describes the tokens whose keys and values are in a KV cache (the CPU
// reference's and the GPU engine's). A token's keys and values depend on its id (or its
// image row), its position, its expert and every token before it, so two sequences share
// cache rows exactly as far as all of those agree: CommonPrefix.
type KVTokens struct {
	ids, types, positions []int
	vision                []bool // expert routing (VisionExpertMask of the full prompt)
	// Image identifies the image whose rows the vision tokens hold, by content (the
	// caller's hash); zero without one.
	Image ImageKey
}

// ImageKey identifies an image by content: a SHA-256.
type ImageKey [sha256.Size]byte

// imageKey is the key of EncodeImage's rows (or of pixel values): the SHA-256 of their
// float32 bytes; the zero key for none.
func imageKey(rows []float32) ImageKey {
	if len(rows) == 0 {
		return ImageKey{}
	}
	h := sha256.New()
	var buf [4096]byte
	for len(rows) > 0 {
		n := min(len(rows), len(buf)/4)
		for i, v := range rows[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		h.Write(buf[:4*n])
		rows = rows[n:]
	}
	var k ImageKey
	copy(k[:], h.Sum(nil))
	return k
}

// Len is the number of tokens.
func (c *KVTokens) Len() int { return len(c.ids) }

// IDs are the tokens' ids (a view: do not modify).
func (c *KVTokens) IDs() []int { return c.ids }

// Truncate keeps the first n tokens.
func (c *KVTokens) Truncate(n int) {
	c.ids, c.types, c.positions, c.vision = c.ids[:n], c.types[:n], c.positions[:n], c.vision[:n]
}

// Reset forgets every token and the image.
func (c *KVTokens) Reset() {
	c.Truncate(0)
	c.Image = ImageKey{}
}

// Append records one token after the others.
func (c *KVTokens) Append(id, typ, pos int, vision bool) {
	c.ids = append(c.ids, id)
	c.types = append(c.types, typ)
	c.positions = append(c.positions, pos)
	c.vision = append(c.vision, vision)
}

// AppendInputs records in's tokens from index from on, routed by vision.
func (c *KVTokens) AppendInputs(in Inputs, vision []bool, from int) {
	for i := from; i < len(in.InputIDs); i++ {
		c.Append(in.InputIDs[i], in.TokenTypeIDs[i], in.PositionIDs[i], vision[i])
	}
}

// AppendGenerated records a generated token fed back at the position after the last.
func (c *KVTokens) AppendGenerated(id int) {
	pos := 0
	if n := len(c.positions); n > 0 {
		pos = c.positions[n-1] + 1
	}
	c.Append(id, LanguageTokenType, pos, false)
}

// CommonPrefix is how many leading tokens of in (routed by vision, with the image image)
// have the keys and values the cache holds: none for another image; otherwise the longest
// prefix whose ids, token types, position ids and experts all agree. Ids are compared,
// never text: an answer's re-tokenized text may split differently from the generated ids,
// and only the ids that match are reused.
func (c *KVTokens) CommonPrefix(in Inputs, vision []bool, image ImageKey) int {
	if image != c.Image {
		return 0
	}
	n := min(len(c.ids), len(in.InputIDs))
	for i := range n {
		if c.ids[i] != in.InputIDs[i] || c.types[i] != in.TokenTypeIDs[i] ||
			c.positions[i] != in.PositionIDs[i] || c.vision[i] != vision[i] {
			return i
		}
	}
	return n
}

// ExpertRun is a range of rows [Start, End) that goes through one expert. The GPU engine
// runs each expert's weights on its runs too.
type ExpertRun struct {
	Start, End int
	Vision     bool
}

func newDecoderState(cfg Config, capacity, maxRows int) *decoderState {
	H, I := cfg.HiddenSize, cfg.IntermediateSize
	st := &decoderState{
		cfg:       cfg,
		capacity:  capacity,
		maxRows:   maxRows,
		key:       make([][]float32, cfg.NumHiddenLayers),
		value:     make([][]float32, cfg.NumHiddenLayers),
		x:         make([]float32, maxRows*H),
		xb:        make([]float32, maxRows*H),
		q:         make([]float32, maxRows*H),
		att:       make([]float32, maxRows*H),
		gate:      make([]float32, maxRows*I),
		up:        make([]float32, maxRows*I),
		scores:    make([]float32, AttentionScratchLen(capacity)),
		hidden:    make([]float32, H),
		logits:    make([]float32, cfg.VocabSize),
		decodePos: make([]int, 1),
		decodeID:  make([]int, 1),
		langRun:   [1]ExpertRun{{0, 1, false}},
	}
	for l := range st.key {
		st.key[l] = make([]float32, capacity*H)
		st.value[l] = make([]float32, capacity*H)
	}
	return st
}

// ExpertRuns splits rows into maximal runs that use the same expert (vision from
// VisionExpertMask), appending to dst[:0]. With one image there are at most three: text
// before, boi + patches, eoi + text after.
func ExpertRuns(dst []ExpertRun, vision []bool) []ExpertRun {
	dst = dst[:0]
	for i, v := range vision {
		if i == 0 || v != vision[i-1] {
			dst = append(dst, ExpertRun{i, i, v})
		}
		dst[len(dst)-1].End = i + 1
	}
	return dst
}

// Prefill starts a new sequence with a prompt and returns the logits [V] and the final-norm
// output [H] at its last token. imageRows are EncodeImage's rows for the vision tokens
// (nil without an image); they replace those tokens' embeddings in order. The KV cache is
// sized for maxNewTokens more tokens. The returned slices are the model's buffers, valid
// until the next Prefill or Decode. Every token runs through every layer (ObserveLinear
// sees them all); PrefillReuse skips the ones the cache already holds.
func (m *Model) Prefill(in Inputs, imageRows []float32, maxNewTokens int) (logits, hidden []float32, err error) {
	logits, hidden, _, err = m.prefill(in, imageRows, maxNewTokens, false)
	return logits, hidden, err
}

// PrefillReuse is Prefill that keeps the keys and values of the longest prefix of the
// prompt that the KV cache already holds (the previous prompt and the tokens generated
// after it, up to the first token that differs: KVTokens.CommonPrefix) and runs
// only the rest, as llama.cpp's prompt cache does. It returns how many tokens it reused:
// at most len(in.InputIDs) − 1, since the last token's logits are the output. The result
// is Prefill's bit for bit: each row's sums run in the same order however many rows a
// call has. Another image, by content, reuses nothing.
func (m *Model) PrefillReuse(in Inputs, imageRows []float32, maxNewTokens int) (logits, hidden []float32, reused int, err error) {
	return m.prefill(in, imageRows, maxNewTokens, true)
}

// ResetCache forgets the tokens in the KV cache (a new conversation); the buffers stay.
func (m *Model) ResetCache() {
	if m.dec != nil {
		m.dec.length = 0
		m.dec.cached.Reset()
	}
}

// CacheLength is the number of tokens whose keys and values the KV cache holds.
func (m *Model) CacheLength() int {
	if m.dec == nil {
		return 0
	}
	return m.dec.length
}

func (m *Model) prefill(in Inputs, imageRows []float32, maxNewTokens int, reuse bool) (logits, hidden []float32, reused int, err error) {
	cfg := m.Config
	H := cfg.HiddenSize
	if err := checkInputs(in, cfg); err != nil {
		return nil, nil, 0, err
	}
	vision := 0
	for _, t := range in.TokenTypeIDs {
		if t == VisionTokenType {
			vision++
		}
	}
	if len(imageRows) != vision*H {
		return nil, nil, 0, fmt.Errorf("inputs have %d vision tokens but %d image rows of width %d were given",
			vision, len(imageRows)/H, H)
	}
	if maxNewTokens < 0 {
		return nil, nil, 0, fmt.Errorf("max new tokens %d is negative", maxNewTokens)
	}
	rows := len(in.InputIDs)
	if maxNewTokens > math.MaxInt-rows {
		return nil, nil, 0, fmt.Errorf("max new tokens %d is too large", maxNewTokens)
	}
	mask := in.VisionExpertMask()
	image := imageKey(imageRows)
	if reuse && m.dec != nil {
		reused = min(m.dec.cached.CommonPrefix(in, mask, image), rows-1)
	}
	capacity := rows + maxNewTokens
	if st := m.dec; st == nil || st.capacity < capacity || st.maxRows < rows-reused {
		m.dec = m.growDecoderState(capacity, rows-reused, reused)
	}
	st := m.dec
	// From here the cache claims only the reused prefix: the rows after it are rewritten,
	// and a call that stops part way leaves a cache that is consistent, only shorter.
	st.length = reused
	st.cached.Truncate(reused)
	st.cached.Image = image
	if reused > 0 {
		st.lastPos = in.PositionIDs[reused-1]
	}

	// token embeddings of the new rows; the vision tokens' rows come from the image
	m.Weights.EmbedTokens.Embed(st.x, in.InputIDs[reused:])
	next := 0
	for _, t := range in.TokenTypeIDs[:reused] {
		if t == VisionTokenType {
			next++
		}
	}
	for i, t := range in.TokenTypeIDs[reused:] {
		if t == VisionTokenType {
			copy(st.x[i*H:][:H], imageRows[next*H:][:H])
			next++
		}
	}
	// routing and positions are the full prompt's
	st.runs = ExpertRuns(st.runs, mask[reused:])
	st.observe = m.ObserveLinear
	if !st.forward(m.Weights, rows-reused, in.PositionIDs[reused:], st.runs, m.Stop) {
		return nil, nil, reused, ErrStopped
	}
	st.cached.AppendInputs(in, mask, reused)
	return st.logits, st.hidden, reused, nil
}

// growDecoderState makes the run state for capacity tokens and calls of maxRows rows,
// keeping the first keep tokens of the current cache. A reused cache grows at least
// twofold (up to the context), so that a conversation reallocates a few times, not every
// turn.
func (m *Model) growDecoderState(capacity, maxRows, keep int) *decoderState {
	old := m.dec
	if old == nil || keep == 0 {
		m.dec = nil // let the old cache go before allocating the new one
		return newDecoderState(m.Config, capacity, maxRows)
	}
	if capacity > old.capacity {
		capacity = max(capacity, min(2*old.capacity, m.Config.MaxPositionEmbeddings))
	}
	st := newDecoderState(m.Config, max(capacity, old.capacity), max(maxRows, old.maxRows))
	H := m.Config.HiddenSize
	for l := range st.key {
		copy(st.key[l], old.key[l][:keep*H])
		copy(st.value[l], old.value[l][:keep*H])
	}
	st.cached = old.cached
	return st
}

// Decode appends one generated token (a language token at the previous position + 1) to
// the sequence and returns the logits [V] for the next one: a view of the model's buffer,
// valid until the next Prefill or Decode.
func (m *Model) Decode(id int) ([]float32, error) {
	st := m.dec
	if st == nil || st.length == 0 { // no Prefill yet, or ResetCache since
		return nil, errors.New("Decode called before Prefill")
	}
	if st.length >= st.capacity {
		return nil, fmt.Errorf("KV cache full at %d tokens: Prefill was given fewer max new tokens", st.length)
	}
	if id < 0 || id >= m.Config.VocabSize {
		return nil, fmt.Errorf("token id %d is outside the vocabulary [0, %d)", id, m.Config.VocabSize)
	}
	st.decodeID[0] = id
	st.decodePos[0] = st.lastPos + 1
	m.Weights.EmbedTokens.Embed(st.x, st.decodeID)
	st.observe = m.ObserveLinear
	st.forward(m.Weights, 1, st.decodePos, st.langRun[:], nil)
	st.cached.AppendGenerated(id)
	return st.logits, nil
}

// checkInputs refuses inputs that would index out of range.
func checkInputs(in Inputs, cfg Config) error {
	n := len(in.InputIDs)
	if n == 0 {
		return errors.New("input_ids is empty")
	}
	if len(in.TokenTypeIDs) != n || len(in.PositionIDs) != n {
		return fmt.Errorf("input_ids has %d entries but token_type_ids %d and position_ids %d",
			n, len(in.TokenTypeIDs), len(in.PositionIDs))
	}
	for i := range n {
		if id := in.InputIDs[i]; id < 0 || id >= cfg.VocabSize {
			return fmt.Errorf("input_ids[%d] = %d is outside the vocabulary [0, %d)", i, id, cfg.VocabSize)
		}
		if t := in.TokenTypeIDs[i]; t != LanguageTokenType && t != VisionTokenType {
			return fmt.Errorf("token_type_ids[%d] = %d is neither %d (language) nor %d (vision)",
				i, t, LanguageTokenType, VisionTokenType)
		}
		if p := in.PositionIDs[i]; p < 0 {
			return fmt.Errorf("position_ids[%d] = %d is negative", i, p)
		}
	}
	return nil
}

// forward runs rows new tokens, whose embeddings are in st.x, through every layer,
// appending their keys and values to the cache, then computes the final norm and the
// logits of the last row. stop (may be nil) is asked before each layer; when it says
// true, forward returns false with the cache's length unchanged: the rows it wrote past
// the end are not part of the cache.
func (st *decoderState) forward(w *Weights, rows int, positions []int, runs []ExpertRun, stop func() bool) bool {
	H := st.cfg.HiddenSize
	for l := range w.Layers {
		if stop != nil && stop() {
			return false
		}
		st.layer(&w.Layers[l], l, rows, positions, runs)
	}
	st.length += rows
	st.lastPos = positions[rows-1]

	// final norm and lm_head, on the last row only: the earlier rows' logits are unused
	RMSNorm(st.hidden, st.x[(rows-1)*H:rows*H], w.Norm, 1, H, st.cfg.RMSNormEps)
	st.observe.see(LMHeadName, st.hidden, 1, H)
	w.LMHead.MatMul(st.logits, st.hidden, nil, 1)
	return true
}

// layer is one decoder layer over rows new tokens at cache rows [length, length+rows).
// Each expert's weights run on its row ranges only.
func (st *decoderState) layer(lw *DecoderLayer, l, rows int, positions []int, runs []ExpertRun) {
	cfg := st.cfg
	H, I, heads := cfg.HiddenSize, cfg.IntermediateSize, cfg.NumAttentionHeads
	eps := cfg.RMSNormEps
	x, xb, q, att := st.x[:rows*H], st.xb[:rows*H], st.q[:rows*H], st.att[:rows*H]
	names := st.observe.layerNames(l)
	seen := st.length + rows // keys visible to the last new row
	k := st.key[l][st.length*H : seen*H]
	v := st.value[l][st.length*H : seen*H]

	// attention rmsnorm
	RMSNorm(xb, x, lw.InputLayernorm, rows, H, eps)

	// q, k, v of each expert; the fused weight's rows are [q; k; v], and k and v are
	// written straight into the cache
	for _, r := range runs {
		e, n := lw.Expert(r.Vision), r.End-r.Start
		in := xb[r.Start*H : r.End*H]
		st.observe.see(names.Expert(r.Vision).QueryKeyValue, in, n, H)
		e.QueryKeyValue.Rows(0, H).MatMul(q[r.Start*H:r.End*H], in, nil, n)
		e.QueryKeyValue.Rows(H, 2*H).MatMul(k[r.Start*H:r.End*H], in, nil, n)
		e.QueryKeyValue.Rows(2*H, 3*H).MatMul(v[r.Start*H:r.End*H], in, nil, n)
	}

	// rotary embeddings at the CogVLM position ids
	RoPE(q, rows, heads, H/heads, positions, RoPEBase)
	RoPE(k, rows, heads, H/heads, positions, RoPEBase)

	// causal attention over the cached and the new keys
	Attention(att, q, st.key[l][:seen*H], st.value[l][:seen*H], st.scores, rows, seen, heads, H/heads, true)

	// output projection of each expert, residual
	for _, r := range runs {
		e, n := lw.Expert(r.Vision), r.End-r.Start
		st.observe.see(names.Expert(r.Vision).Dense, att[r.Start*H:r.End*H], n, H)
		e.Dense.MatMul(xb[r.Start*H:r.End*H], att[r.Start*H:r.End*H], nil, n)
	}
	Add(x, x, xb)

	// ffn rmsnorm
	RMSNorm(xb, x, lw.PostAttentionLayernorm, rows, H, eps)

	// SwiGLU MLP of each expert: down(silu(gate(x)) * up(x)), residual
	for _, r := range runs {
		e, n := lw.Expert(r.Vision), r.End-r.Start
		in := xb[r.Start*H : r.End*H]
		gate, up := st.gate[r.Start*I:r.End*I], st.up[r.Start*I:r.End*I]
		en := names.Expert(r.Vision)
		st.observe.see(en.GateProj, in, n, H)
		e.GateProj.MatMul(gate, in, nil, n)
		st.observe.see(en.UpProj, in, n, H)
		e.UpProj.MatMul(up, in, nil, n)
		SiLUMul(gate, gate, up)
		st.observe.see(en.DownProj, gate, n, I)
		e.DownProj.MatMul(in, gate, nil, n)
	}
	Add(x, x, xb)
}
