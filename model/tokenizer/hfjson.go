package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
)

// hfFile is a Hugging Face tokenizer.json: the keys this package reads, in the order the
// tokenizers library writes them (WriteJSON uses the same struct).
type hfFile struct {
	Version       string          `json:"version"`
	Truncation    json.RawMessage `json:"truncation"`
	Padding       json.RawMessage `json:"padding"`
	AddedTokens   []hfAddedToken  `json:"added_tokens"`
	Normalizer    *hfComponent    `json:"normalizer"`
	PreTokenizer  *hfComponent    `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       *hfComponent    `json:"decoder"`
	Model         hfModel         `json:"model"`
}

type hfAddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// hfComponent is one normalizer, pre-tokenizer or decoder: "type" and that type's options.
type hfComponent struct {
	Type          string        `json:"type"`
	Normalizers   []hfComponent `json:"normalizers,omitempty"` // Sequence normalizer
	Decoders      []hfComponent `json:"decoders,omitempty"`    // Sequence decoder
	Prepend       *string       `json:"prepend,omitempty"`     // Prepend
	Pattern       *hfPattern    `json:"pattern,omitempty"`     // Replace
	Content       *string       `json:"content,omitempty"`     // Replace, Strip
	Start         *int          `json:"start,omitempty"`       // Strip
	Stop          *int          `json:"stop,omitempty"`        // Strip
	Replacement   *string       `json:"replacement,omitempty"` // Metaspace
	PrependScheme *string       `json:"prepend_scheme,omitempty"`
	Split         *bool         `json:"split,omitempty"`
}

type hfPattern struct {
	String *string `json:"String,omitempty"`
	Regex  *string `json:"Regex,omitempty"`
}

type hfModel struct {
	Type                    string          `json:"type"`
	Dropout                 *float64        `json:"dropout"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            *bool           `json:"ignore_merges,omitempty"`
	Vocab                   json.RawMessage `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
}

// The LLaMA names of the begin- and end-of-sequence tokens. tokenizer.json does not say
// which special token is eos (tokenizer_config.json does), so LoadJSON goes by name.
const (
	bosPiece = "<s>"
	eosPiece = "</s>"
)

// LoadJSON reads a Hugging Face tokenizer.json of a LLaMA-style BPE tokenizer: model BPE
// with byte_fallback and no merges on special or byte pieces, a "▁" dummy prefix and
// spaces replaced by "▁" (normalizer Prepend+Replace, or a Metaspace pre-tokenizer that
// does not split), no other normalization, and the decoder Replace "▁"→" ", ByteFallback,
// Fuse, Strip. The special tokens "<s>" and "</s>" are bos and eos. Anything else is
// refused with an error naming the key, rather than tokenized differently.
func LoadJSON(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return ParseJSONFile(data, path)
}

// ParseJSONFile builds a Tokenizer from the bytes of a tokenizer.json (see LoadJSON); path
// names it in messages.
func ParseJSONFile(data []byte, path string) (*Tokenizer, error) {
	t, err := parseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

// ParseJSON builds a Tokenizer from the bytes of a tokenizer.json (the browser has no
// files: the engine fetches the package's tokenizer.json). See LoadJSON.
func ParseJSON(data []byte) (*Tokenizer, error) {
	t, err := parseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: tokenizer.json: %w", err)
	}
	return t, nil
}

// parseJSON builds a Tokenizer from the bytes of a tokenizer.json.
func parseJSON(data []byte) (*Tokenizer, error) {
	var f hfFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, jsonError("", data, err)
	}
	m := f.Model
	switch {
	case m.Type != "BPE":
		return nil, fmt.Errorf("model.type is %q; only \"BPE\" is supported", m.Type)
	case !m.ByteFallback:
		return nil, errors.New("model.byte_fallback is false; only byte-fallback models are supported")
	case m.Dropout != nil && *m.Dropout != 0:
		return nil, fmt.Errorf("model.dropout is %g; only null (deterministic BPE) is supported", *m.Dropout)
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "":
		return nil, fmt.Errorf("model.continuing_subword_prefix is %q; only null is supported", *m.ContinuingSubwordPrefix)
	case m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "":
		return nil, fmt.Errorf("model.end_of_word_suffix is %q; only null is supported", *m.EndOfWordSuffix)
	case m.IgnoreMerges != nil && *m.IgnoreMerges:
		return nil, errors.New("model.ignore_merges is true; only false is supported")
	case m.UnkToken == nil:
		return nil, errors.New("model.unk_token is null; byte fallback needs <unk>")
	}
	// fuse_unk is not checked: with all 256 byte pieces Encode never produces <unk>.

	if len(m.Vocab) == 0 {
		return nil, errors.New("model.vocab is missing")
	}
	var vocab map[string]int
	if err := json.Unmarshal(m.Vocab, &vocab); err != nil {
		return nil, jsonError("model.vocab", m.Vocab, err)
	}
	pieces := make([]string, len(vocab))
	for p, id := range vocab {
		if id < 0 || id >= len(vocab) {
			return nil, fmt.Errorf("model.vocab: %q has id %d; ids must be 0…%d", p, id, len(vocab)-1)
		}
		if pieces[id] != "" {
			a, b := pieces[id], p
			if a > b {
				a, b = b, a // report the same pair whatever the map order
			}
			return nil, fmt.Errorf("model.vocab: %q and %q both have id %d", a, b, id)
		}
		if p == "" {
			return nil, fmt.Errorf("model.vocab: the empty string has id %d", id)
		}
		pieces[id] = p
	}

	kinds := make([]pieceKind, len(pieces))
	for id, p := range pieces {
		if _, ok := parseBytePiece(p); ok {
			kinds[id] = kindByte
		}
	}
	unk, ok := vocab[*m.UnkToken]
	if !ok {
		return nil, fmt.Errorf("model.unk_token %q is not in model.vocab", *m.UnkToken)
	}
	bos, eos := -1, -1
	for i, a := range f.AddedTokens {
		key := fmt.Sprintf("added_tokens[%d]", i)
		switch {
		case a.ID < 0 || a.ID >= len(pieces):
			return nil, fmt.Errorf("%s: id %d is outside model.vocab (%d pieces); added tokens beyond the vocabulary are not supported", key, a.ID, len(pieces))
		case pieces[a.ID] != a.Content:
			return nil, fmt.Errorf("%s: content %q but model.vocab has %q at id %d", key, a.Content, pieces[a.ID], a.ID)
		case !a.Special:
			return nil, fmt.Errorf("%s: %q is not special; user-defined added tokens are not supported", key, a.Content)
		}
		kinds[a.ID] = kindControl
		switch a.Content {
		case bosPiece:
			bos = a.ID
		case eosPiece:
			eos = a.ID
		}
	}
	if kinds[unk] != kindControl {
		return nil, fmt.Errorf("model.unk_token %q is not among added_tokens as a special token", *m.UnkToken)
	}
	kinds[unk] = kindUnknown
	for _, s := range []struct {
		role, piece string
		id          int
	}{{"bos", bosPiece, bos}, {"eos", eosPiece, eos}} {
		if s.id < 0 {
			return nil, fmt.Errorf("added_tokens: no special token %q (LLaMA's %s)", s.piece, s.role)
		}
	}

	addDummyPrefix, err := readPipeline(f.Normalizer, f.PreTokenizer, f.Decoder)
	if err != nil {
		return nil, err
	}
	t, err := newTokenizer(pieces, kinds, unk, bos, eos, addDummyPrefix)
	if err != nil {
		return nil, fmt.Errorf("model.vocab: %w", err)
	}
	if err := t.readMerges(m.Merges); err != nil {
		return nil, err
	}
	return t, nil
}

// readMerges fills the merge table from model.merges, "left right" strings (or
// ["left", "right"] pairs, the newer form) in priority order.
func (t *Tokenizer) readMerges(raw json.RawMessage) error {
	if len(raw) == 0 {
		return errors.New("model.merges is missing")
	}
	var pairs [][]string
	var lines []string
	if err := json.Unmarshal(raw, &lines); err == nil {
		pairs = make([][]string, len(lines))
		for i, line := range lines {
			pairs[i] = strings.Split(line, " ")
		}
	} else if err := json.Unmarshal(raw, &pairs); err != nil {
		return fmt.Errorf("model.merges is not a list of \"left right\" strings or of [\"left\", \"right\"] pairs: %w", jsonError("", raw, err))
	}
	if len(pairs) > 1<<31-1 {
		return fmt.Errorf("model.merges has %d entries, more than %d", len(pairs), 1<<31-1)
	}
	t.merges = make(map[uint64]mergeRule, len(pairs))
	for rank, parts := range pairs {
		if len(parts) != 2 {
			return fmt.Errorf("model.merges[%d] is %q; want two pieces", rank, parts)
		}
		var ids [3]int32
		for i, p := range []string{parts[0], parts[1], parts[0] + parts[1]} {
			id, ok := t.normalIDs[p]
			if !ok {
				return fmt.Errorf("model.merges[%d] %q %q: %q is not a normal piece of model.vocab", rank, parts[0], parts[1], p)
			}
			ids[i] = id
		}
		k := pairKey(ids[0], ids[1])
		if _, dup := t.merges[k]; dup {
			return fmt.Errorf("model.merges[%d] %q %q repeats an earlier merge", rank, parts[0], parts[1])
		}
		t.merges[k] = mergeRule{rank: int32(rank), result: ids[2]}
	}
	return nil
}

// readPipeline checks that the normalizer, pre-tokenizer and decoder are the LLaMA ones
// (the legacy Prepend+Replace normalizer, or the newer Metaspace pre-tokenizer) and says
// whether they add the dummy prefix.
func readPipeline(normalizer, preTokenizer, decoder *hfComponent) (addDummyPrefix bool, err error) {
	switch {
	case normalizer != nil && preTokenizer != nil:
		return false, fmt.Errorf("pre_tokenizer %q next to a normalizer; only one of them may handle spaces", preTokenizer.Type)
	case normalizer != nil:
		steps := []hfComponent{*normalizer}
		key := "normalizer"
		if normalizer.Type == "Sequence" {
			steps, key = normalizer.Normalizers, "normalizer.normalizers"
		}
		replaced := false
		for i, n := range steps {
			k := fmt.Sprintf("%s[%d]", key, i)
			if key == "normalizer" {
				k = key
			}
			switch {
			case n.Type == "Prepend" && n.Prepend != nil && *n.Prepend == spaceSymbol && !addDummyPrefix:
				addDummyPrefix = true
			case n.Type == "Replace" && isString(n.Pattern, " ") && isStringPtr(n.Content, spaceSymbol) && !replaced:
				replaced = true
			default:
				return false, fmt.Errorf("%s: %s; only Prepend \"▁\" and Replace \" \"→\"▁\", once each, are supported", k, describe(n))
			}
		}
		if !replaced {
			return false, fmt.Errorf("%s has no Replace \" \"→\"▁\"", key)
		}
	case preTokenizer != nil:
		p := preTokenizer
		if p.Type != "Metaspace" || !isStringPtr(p.Replacement, spaceSymbol) || p.Split == nil || *p.Split || p.PrependScheme == nil {
			return false, fmt.Errorf("pre_tokenizer: %s; only Metaspace \"▁\" with split false and a prepend_scheme is supported", describe(*p))
		}
		switch *p.PrependScheme {
		case "first", "always": // the same for one text without special tokens
			addDummyPrefix = true
		case "never":
		default:
			return false, fmt.Errorf("pre_tokenizer.prepend_scheme is %q; want \"first\", \"always\" or \"never\"", *p.PrependScheme)
		}
	default:
		return false, errors.New("normalizer and pre_tokenizer are both null; spaces would not become \"▁\"")
	}

	want := llamaDecoder(addDummyPrefix)
	switch {
	case decoder == nil:
		return false, errors.New("decoder is null")
	case decoder.Type != "Sequence" || len(decoder.Decoders) != len(want.Decoders):
		return false, fmt.Errorf("decoder: %s; want a Sequence of %d: %s", describe(*decoder), len(want.Decoders), describeAll(want.Decoders))
	}
	for i, d := range decoder.Decoders {
		if got, _ := json.Marshal(d); string(got) != string(mustMarshal(want.Decoders[i])) {
			return false, fmt.Errorf("decoder.decoders[%d]: %s; want %s", i, describe(d), describe(want.Decoders[i]))
		}
	}
	return addDummyPrefix, nil
}

// llamaDecoder is the decoder of the LLaMA tokenizer.json; Strip removes the space the
// dummy prefix put before the text.
func llamaDecoder(addDummyPrefix bool) hfComponent {
	space, symbol, one, zero := " ", spaceSymbol, 1, 0
	d := hfComponent{Type: "Sequence", Decoders: []hfComponent{
		{Type: "Replace", Pattern: &hfPattern{String: &symbol}, Content: &space},
		{Type: "ByteFallback"},
		{Type: "Fuse"},
	}}
	if addDummyPrefix {
		d.Decoders = append(d.Decoders, hfComponent{Type: "Strip", Content: &space, Start: &one, Stop: &zero})
	}
	return d
}

func isString(p *hfPattern, s string) bool {
	return p != nil && p.Regex == nil && isStringPtr(p.String, s)
}
func isStringPtr(p *string, s string) bool { return p != nil && *p == s }

// describe renders a component for an error message.
func describe(c hfComponent) string { return truncate(string(mustMarshal(c))) }

func describeAll(cs []hfComponent) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, describe(c))
	}
	return strings.Join(parts, ", ")
}

// mustMarshal is compact JSON of v without HTML escaping ("<s>" stays "<s>"). v is always
// one of this file's plain types or strings, which cannot fail to marshal.
func mustMarshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("tokenizer: marshalling " + fmt.Sprintf("%T", v) + ": " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// truncate keeps error messages to one short line.
func truncate(s string) string {
	const max = 120
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// jsonError turns an encoding/json error into one line naming the key and byte offset.
func jsonError(key string, data []byte, err error) error {
	if key != "" {
		key += ": "
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("%sinvalid JSON at byte %d: %v", key, syn.Offset, err)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		field := typ.Field
		if field == "" {
			field = "the value"
		}
		return fmt.Errorf("%s%s is a JSON %s at byte %d, want %s", key, field, typ.Value, typ.Offset, jsonKind(typ.Type))
	}
	return fmt.Errorf("%s%v", key, err)
}

// jsonKind names the JSON value that decodes into a Go type.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "an integer in range"
}

// WriteJSON writes the tokenizer as a Hugging Face tokenizer.json (the LLaMA layout:
// normalizer Prepend+Replace, BPE with byte fallback, post-processor adding <s>, decoder
// Replace/ByteFallback/Fuse/Strip) that LoadJSON, and the tokenizers library, read back
// to the same ids. Merges are written in rank order; for a tokenizer.model whose pieces
// tie in score, the order among the tied merges is by piece ids.
func (t *Tokenizer) WriteJSON(w io.Writer) error {
	// tokenizer.json has no field for eos: LoadJSON goes by the LLaMA names.
	if t.pieces[t.bos] != bosPiece || t.pieces[t.eos] != eosPiece {
		return fmt.Errorf("tokenizer: tokenizer.json cannot record bos %q and eos %q; LoadJSON expects %q and %q", t.pieces[t.bos], t.pieces[t.eos], bosPiece, eosPiece)
	}
	var addedTokens []hfAddedToken
	for id, k := range t.kinds {
		if k == kindControl || k == kindUnknown {
			addedTokens = append(addedTokens, hfAddedToken{ID: id, Content: t.pieces[id], Special: true})
		}
	}
	symbol, space := spaceSymbol, " "
	normalizer := &hfComponent{Type: "Sequence", Normalizers: []hfComponent{
		{Type: "Replace", Pattern: &hfPattern{String: &space}, Content: &symbol},
	}}
	if t.addDummyPrefix {
		normalizer.Normalizers = append([]hfComponent{{Type: "Prepend", Prepend: &symbol}}, normalizer.Normalizers...)
	}
	decoder := llamaDecoder(t.addDummyPrefix)

	unk := t.pieces[t.unk]
	f := hfFile{
		Version:       "1.0",
		AddedTokens:   addedTokens,
		Normalizer:    normalizer,
		PostProcessor: t.postProcessorJSON(),
		Decoder:       &decoder,
		Model: hfModel{
			Type:         "BPE",
			UnkToken:     &unk,
			FuseUnk:      true,
			ByteFallback: true,
			Vocab:        t.vocabJSON(),
			Merges:       mustMarshal(t.mergeList()),
		},
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return fmt.Errorf("tokenizer: writing tokenizer.json: %w", err)
	}
	return nil
}

// vocabJSON is model.vocab in id order (a Go map would come out sorted by piece).
func (t *Tokenizer) vocabJSON() json.RawMessage {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for id, p := range t.pieces {
		if id > 0 {
			buf.WriteByte(',')
		}
		buf.Write(mustMarshal(p))
		fmt.Fprintf(&buf, ":%d", id)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// mergeList is the merge table as "left right" strings in rank order.
func (t *Tokenizer) mergeList() []string {
	type entry struct {
		rank        int32
		left, right int32
	}
	entries := make([]entry, 0, len(t.merges))
	for k, m := range t.merges {
		entries = append(entries, entry{m.rank, int32(uint32(k >> 32)), int32(uint32(k))})
	}
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if a.rank != b.rank {
			return a.rank < b.rank
		}
		if a.left != b.left {
			return a.left < b.left
		}
		return a.right < b.right
	})
	list := make([]string, len(entries))
	for i, e := range entries {
		list[i] = t.pieces[e.left] + " " + t.pieces[e.right]
	}
	return list
}

// postProcessorJSON is the LLaMA TemplateProcessing that puts <s> before each sequence
// (Encode does not use it; it keeps the file complete for other readers).
func (t *Tokenizer) postProcessorJSON() json.RawMessage {
	bos := t.pieces[t.bos]
	type ref struct {
		ID     string `json:"id"`
		TypeID int    `json:"type_id"`
	}
	type item struct {
		SpecialToken *ref `json:"SpecialToken,omitempty"`
		Sequence     *ref `json:"Sequence,omitempty"`
	}
	type special struct {
		ID     string   `json:"id"`
		IDs    []int    `json:"ids"`
		Tokens []string `json:"tokens"`
	}
	return mustMarshal(struct {
		Type          string             `json:"type"`
		Single        []item             `json:"single"`
		Pair          []item             `json:"pair"`
		SpecialTokens map[string]special `json:"special_tokens"`
	}{
		Type:          "TemplateProcessing",
		Single:        []item{{SpecialToken: &ref{bos, 0}}, {Sequence: &ref{"A", 0}}},
		Pair:          []item{{SpecialToken: &ref{bos, 0}}, {Sequence: &ref{"A", 0}}, {SpecialToken: &ref{bos, 1}}, {Sequence: &ref{"B", 1}}},
		SpecialTokens: map[string]special{bos: {ID: bos, IDs: []int{t.bos}, Tokens: []string{bos}}},
	})
}
