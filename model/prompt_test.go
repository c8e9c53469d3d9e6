package model

import (
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
)

func TestBuildPrompt(t *testing.T) {
	twoTurns := [][2]string{{"Q1", "A1"}, {"Q2", "A2"}}
	for _, tc := range []struct {
		template, query string
		history         [][2]string
		want, errHas    string
	}{
		{"chat", "Q3", twoTurns, "Question: Q1 Answer: A1\nQuestion: Q2 Answer: A2\nQuestion: Q3 Answer:", ""},
		{"chat", "What is in this image?", nil, "Question: What is in this image? Answer:", ""},
		{"vqa", "Q3", twoTurns[:1], "Question: Q1 Short answer: A1\nQuestion: Q3 Short answer:", ""},
		{"base", "The quick brown fox", twoTurns, "The quick brown fox", ""},
		{"chat", "  spaces  kept ", nil, "Question:   spaces  kept  Answer:", ""},
		{"vicuna", "Q1", nil, VicunaSystemPrompt + " USER: Q1 ASSISTANT:", ""},
		{"vicuna", "Q3", twoTurns, VicunaSystemPrompt + " USER: Q1 ASSISTANT: A1</s>USER: Q2 ASSISTANT: A2</s>USER: Q3 ASSISTANT:", ""},
		{"llava", "Q", nil, "", `unknown template "llava" (want one of chat, vqa, base, vicuna)`},
	} {
		got, err := BuildPrompt(tc.template, tc.query, tc.history)
		switch {
		case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
			t.Errorf("%s: error %v, want one containing %q", tc.template, err, tc.errHas)
		case tc.errHas == "" && (err != nil || got != tc.want):
			t.Errorf("%s %q: got %q, %v; want %q", tc.template, tc.query, got, err, tc.want)
		}
	}
}

func TestPositionIDsAndExpertMask(t *testing.T) {
	const L, V = LanguageTokenType, VisionTokenType
	for _, tc := range []struct {
		name      string
		types     []int
		positions []int
		mask      []int
	}{
		{"text only", []int{L, L, L}, []int{0, 1, 2}, []int{0, 0, 0}},
		{"image", []int{L, V, V, V, V, V, V, L, L}, []int{0, 1, 2, 2, 2, 2, 3, 4, 5}, []int{0, 1, 1, 1, 1, 1, 0, 0, 0}},
		// a run of two is just boi and eoi; no interior token
		{"boi eoi only", []int{L, V, V, L}, []int{0, 1, 2, 3}, []int{0, 1, 0, 0}},
		// a sequence starting with vision tokens: the first is a boi
		{"image first", []int{V, V, V, V, L}, []int{0, 1, 1, 2, 3}, []int{1, 1, 1, 0, 0}},
		// vision tokens at the end: the last is an eoi and the last token is never routed
		// to the vision expert
		{"image last", []int{L, V, V, V}, []int{0, 1, 2, 3}, []int{0, 1, 1, 0}},
		{"two images", []int{L, V, V, V, V, L, V, V, V, L}, []int{0, 1, 2, 2, 3, 4, 5, 6, 7, 8}, []int{0, 1, 1, 1, 0, 0, 1, 1, 0, 0}},
	} {
		if got := PositionIDs(tc.types); !slices.Equal(got, tc.positions) {
			t.Errorf("%s: PositionIDs = %v, want %v", tc.name, got, tc.positions)
		}
		if got := boolsToInts(VisionExpertMask(tc.types)); !slices.Equal(got, tc.mask) {
			t.Errorf("%s: VisionExpertMask = %v, want %v", tc.name, got, tc.mask)
		}
	}
}

func TestBuildInputs(t *testing.T) {
	cfg := goldenConfig(t) // 6 image tokens
	text := []int{894, 29901, 1724}
	withImage := BuildInputs(text, true, cfg)
	if want := []int{1, 0, 0, 0, 0, 0, 0, 894, 29901, 1724}; !slices.Equal(withImage.InputIDs, want) {
		t.Errorf("with image: input_ids %v, want %v", withImage.InputIDs, want)
	}
	if want := []int{0, 1, 2, 2, 2, 2, 3, 4, 5, 6}; !slices.Equal(withImage.PositionIDs, want) {
		t.Errorf("with image: position_ids %v, want %v", withImage.PositionIDs, want)
	}
	textOnly := BuildInputs(text, false, cfg)
	if !slices.Equal(textOnly.InputIDs, []int{1, 894, 29901, 1724}) ||
		!slices.Equal(textOnly.TokenTypeIDs, []int{0, 0, 0, 0}) || !slices.Equal(textOnly.PositionIDs, []int{0, 1, 2, 3}) {
		t.Errorf("text only: %+v", textOnly)
	}
	if in := BuildInputs(nil, false, cfg); !slices.Equal(in.InputIDs, []int{1}) {
		t.Errorf("empty prompt: %+v", in)
	}
}

func TestCheckContextLength(t *testing.T) {
	cfg := goldenConfig(t)
	for _, tc := range []struct {
		prompt, newTokens int
		want              string // "" fits
	}{
		{2000, 48, ""},
		{2048, 0, ""},
		{0, 2048, ""},
		{2000, 100, "prompt of 2000 tokens + 100 new tokens exceeds max_position_embeddings 2048"},
		{2049, 0, "prompt of 2049 tokens + 0 new tokens exceeds max_position_embeddings 2048"},
		// the sum wraps around to a negative int: compared without adding
		{10, math.MaxInt, "prompt of 10 tokens + 9223372036854775807 new tokens exceeds max_position_embeddings 2048"},
		{math.MaxInt, 10, "prompt of 9223372036854775807 tokens + 10 new tokens exceeds max_position_embeddings 2048"},
		{math.MaxInt, math.MaxInt, "exceeds max_position_embeddings 2048"},
		{10, -1, "prompt of 10 tokens + -1 new tokens: counts must not be negative"},
		{10, math.MinInt, "counts must not be negative"},
	} {
		err := CheckContextLength(tc.prompt, tc.newTokens, cfg)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckContextLength(%d, %d) = %v, want %q", tc.prompt, tc.newTokens, err, tc.want)
		}
		if negative := tc.prompt < 0 || tc.newTokens < 0; err != nil && errors.Is(err, ErrContextLength) == negative {
			t.Errorf("CheckContextLength(%d, %d) = %v: errors.Is ErrContextLength %v", tc.prompt, tc.newTokens, err, !negative)
		}
	}
}

// fastChatConversation is FastChat's Conversation (fastchat/conversation.py), written
// again from its description for the vicuna_v1.1 template: a system prompt, two roles,
// messages with "" for the one to generate, and get_prompt for SeparatorStyle.ADD_COLON_TWO.
type fastChatConversation struct {
	system    string
	roles     [2]string
	messages  [][2]string // role, message
	sep, sep2 string
}

func vicunaV11() fastChatConversation {
	return fastChatConversation{
		system: "A chat between a curious user and an artificial intelligence assistant. " +
			"The assistant gives helpful, detailed, and polite answers to the user's questions.",
		roles: [2]string{"USER", "ASSISTANT"},
		sep:   " ",
		sep2:  "</s>",
	}
}

func (c *fastChatConversation) appendMessage(role, message string) {
	c.messages = append(c.messages, [2]string{role, message})
}

// getPrompt is ADD_COLON_TWO: seps = [sep, sep2]; ret = system + seps[0]; then for
// message i: role + ": " + message + seps[i % 2] when the message is not empty, else
// role + ":".
func (c fastChatConversation) getPrompt() string {
	seps := [2]string{c.sep, c.sep2}
	ret := c.system + seps[0]
	for i, m := range c.messages {
		if m[1] != "" {
			ret += m[0] + ": " + m[1] + seps[i%2]
		} else {
			ret += m[0] + ":"
		}
	}
	return ret
}

// llamaTokenizerEncode is Hugging Face's LlamaTokenizer.encode(text,
// add_special_tokens=False) with legacy=false (vicuna-7b-v1.5's tokenizer_config.json):
// the special tokens are split out of the text first; "▁" is put before the whole text
// (so the first chunk is SentencePiece with its dummy prefix) and the chunks after a
// special token are encoded without one.
func llamaTokenizerEncode(tok *tokenizer.Tokenizer, text string) []int {
	special := map[string]int{"<unk>": tok.UNK(), "<s>": tok.BOS(), "</s>": tok.EOS()}
	var ids []int
	first := true
	for text != "" {
		at, name := len(text), ""
		for s := range special {
			if i := strings.Index(text, s); i >= 0 && (i < at || i == at && len(s) > len(name)) {
				at, name = i, s
			}
		}
		if chunk := text[:at]; chunk != "" {
			if first {
				ids = append(ids, tok.Encode(chunk)...)
			} else {
				ids = append(ids, tok.EncodeAfterSpecial(chunk)...)
			}
		}
		first = false
		if name == "" {
			break
		}
		ids = append(ids, special[name])
		text = text[at+len(name):]
	}
	return ids
}

func goldenTokenizer(t *testing.T) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(filepath.Join(goldenDir, "tokenizer"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The vicuna template's ids, with and without history, are those of FastChat's
// vicuna_v1.1 prompt tokenized by LlamaTokenizer: an eos id where each earlier answer
// ends, never the characters of "</s>".
func TestVicunaPromptIDs(t *testing.T) {
	tok := goldenTokenizer(t)
	cfg := goldenConfig(t)
	for _, tc := range []struct {
		name    string
		query   string
		history [][2]string
	}{
		{"one question", "What is the capital of France?", nil},
		{"one earlier turn", "And of Italy?", [][2]string{{"What is the capital of France?", "The capital of France is Paris."}}},
		{"three earlier turns", "Why?", [][2]string{{"Hi", "Hello! How can I help?"}, {"Tell me a joke.", "Why did the chicken cross the road?\nTo get to the other side."}, {"Again", "No."}}},
		{"spaces and unicode", "  Qué   pasa?  ", [][2]string{{"日本語", " leading and trailing spaces "}}},
		{"an empty earlier answer", "Q2", [][2]string{{"Q1", ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conv := vicunaV11()
			for _, turn := range tc.history {
				conv.appendMessage(conv.roles[0], turn[0])
				conv.appendMessage(conv.roles[1], turn[1])
			}
			conv.appendMessage(conv.roles[0], tc.query)
			conv.appendMessage(conv.roles[1], "")
			want := llamaTokenizerEncode(tok, conv.getPrompt())

			got, err := PromptIDs(tok, "vicuna", tc.query, tc.history, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("ids %v\nwant %v\n(%q)", got, want, conv.getPrompt())
			}
			if text, _ := BuildPrompt("vicuna", tc.query, tc.history); text != conv.getPrompt() {
				t.Errorf("BuildPrompt %q\nwant FastChat's %q", text, conv.getPrompt())
			}
			answers := 0
			for _, turn := range tc.history {
				if turn[1] != "" {
					answers++
				}
			}
			if n := strings.Count(tok.Decode(got), "</s>"); n != 0 || count(got, tok.EOS()) != answers {
				t.Errorf("%d eos ids and %d spelled-out </s> for %d earlier answers", count(got, tok.EOS()), n, answers)
			}
		})
	}
}

func count(ids []int, id int) int {
	n := 0
	for _, v := range ids {
		if v == id {
			n++
		}
	}
	return n
}

// Only the template puts control tokens in a prompt: "</s>" typed by the user stays text
// (LlamaTokenizer would make it an eos; we do not, so a question cannot end a turn).
func TestPromptIDsUserTextStaysText(t *testing.T) {
	tok := goldenTokenizer(t)
	cfg := goldenConfig(t)
	query := "What does </s> mean? And <s>?"
	got, err := PromptIDs(tok, "vicuna", query, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if count(got, tok.EOS()) != 0 || count(got, tok.BOS()) != 0 {
		t.Errorf("ids %v hold a control token", got)
	}
	if text, _ := BuildPrompt("vicuna", query, nil); !slices.Equal(got, tok.Encode(text)) {
		t.Errorf("ids %v, want the text's %v", got, tok.Encode(text))
	}
}

// For chat, vqa and base, PromptIDs is Encode of BuildPrompt's text.
func TestPromptIDsTHUDMTemplates(t *testing.T) {
	tok := goldenTokenizer(t)
	cfg := goldenConfig(t)
	history := [][2]string{{"Q1", "A1 </s>"}}
	for _, template := range []string{"chat", "vqa", "base"} {
		text, _ := BuildPrompt(template, "Q2", history)
		got, err := PromptIDs(tok, template, "Q2", history, cfg)
		if err != nil || !slices.Equal(got, tok.Encode(text)) {
			t.Errorf("%s: %v, %v; want %v", template, got, err, tok.Encode(text))
		}
	}
	if _, err := PromptIDs(tok, "llava", "Q", nil, cfg); err == nil || !strings.Contains(err.Error(), `unknown template "llava"`) {
		t.Errorf("unknown template: %v", err)
	}
}

// countingTokenizer records how many bytes it was asked to encode.
type countingTokenizer struct{ bytes int }

func (c *countingTokenizer) Encode(text string) []int { c.bytes += len(text); return []int{3} }
func (c *countingTokenizer) EncodeAfterSpecial(text string) []int {
	c.bytes += len(text)
	return []int{3}
}
func (c *countingTokenizer) EOS() int { return 2 }

// A prompt that cannot fit the context is refused by its length before it is tokenized:
// 10 MB of history costs nothing.
func TestPromptIDsRefusesLongTextUntokenized(t *testing.T) {
	cfg := goldenConfig(t) // 2048 positions
	limit := MaxPromptBytes(cfg)
	if limit != 2048*maxBytesPerToken {
		t.Fatalf("MaxPromptBytes = %d, want %d", limit, 2048*maxBytesPerToken)
	}
	huge := [][2]string{{strings.Repeat("a", 10<<20), "b"}}
	for _, template := range Templates {
		if template == "base" {
			continue // base ignores history
		}
		var tok countingTokenizer
		_, err := PromptIDs(&tok, template, "Q", huge, cfg)
		if err == nil || !strings.Contains(err.Error(), "cannot fit max_position_embeddings 2048 (at most 131072 bytes") || !errors.Is(err, ErrContextLength) || tok.bytes != 0 {
			t.Errorf("%s: err %v after encoding %d bytes; want the limit named and nothing encoded", template, err, tok.bytes)
		}
	}
	// the bound is on the text: a prompt of exactly the limit is tokenized
	var tok countingTokenizer
	if _, err := PromptIDs(&tok, "base", strings.Repeat("a", limit), nil, cfg); err != nil || tok.bytes != limit {
		t.Errorf("prompt of %d bytes: %v after encoding %d bytes", limit, err, tok.bytes)
	}
	if _, err := PromptIDs(&tok, "base", strings.Repeat("a", limit+1), nil, cfg); err == nil {
		t.Errorf("prompt of %d bytes accepted", limit+1)
	}
	if got := MaxPromptBytes(Config{MaxPositionEmbeddings: math.MaxInt}); got <= 0 {
		t.Errorf("MaxPromptBytes wraps for a huge context: %d", got)
	}
}

// maxBytesPerToken holds for the real vocabulary: no piece stands for more input bytes
// (a piece's own bytes are at least those it stands for: "▁" stands for a space or itself,
// a byte piece for one byte).
func TestMaxBytesPerToken(t *testing.T) {
	tok := goldenTokenizer(t)
	longest := 0
	for id := range tok.VocabSize() {
		longest = max(longest, len(tok.Piece(id)))
	}
	if longest > maxBytesPerToken {
		t.Errorf("the longest piece has %d bytes, more than maxBytesPerToken %d", longest, maxBytesPerToken)
	}
}

func TestDefaults(t *testing.T) {
	s := DefaultSampling()
	if s.Temperature != 0 || s.MaxNewTokens != DefaultMaxNewTokens {
		t.Errorf("DefaultSampling %+v: want greedy, %d tokens", s, DefaultMaxNewTokens)
	}
	if _, err := NewSampler(s, 32000); err != nil {
		t.Errorf("DefaultSampling %+v: %v", s, err)
	}
	cfg := goldenConfig(t)
	for _, tc := range []struct {
		version  string
		hasImage bool
		want     string
	}{
		{"chat", false, "vicuna"},
		{"base", false, "vicuna"},
		{"chat", true, "chat"},
		{"base", true, "base"},
		{"vqa", true, "vqa"},
		{"", true, "chat"},
		{"chat_old", true, "chat"},
	} {
		cfg.TemplateVersion = tc.version
		if got := DefaultTemplate(cfg, tc.hasImage); got != tc.want {
			t.Errorf("DefaultTemplate(template_version %q, image %v) = %q, want %q", tc.version, tc.hasImage, got, tc.want)
		}
	}
}

func TestCapNewTokens(t *testing.T) {
	for _, tc := range []struct{ maxNew, prompt, context, want int }{
		{256, 10, 2048, 256},   // room enough: the default as it is
		{256, 1900, 2048, 148}, // the context's end comes first
		{256, 2047, 2048, 1},
		{256, 2048, 2048, 1}, // a full context still asks for one token: CheckContextLength refuses it
		{256, 3000, 2048, 1},
		{0, 10, 2048, 0},
	} {
		if got := CapNewTokens(tc.maxNew, tc.prompt, tc.context); got != tc.want {
			t.Errorf("CapNewTokens(%d, %d, %d) = %d, want %d", tc.maxNew, tc.prompt, tc.context, got, tc.want)
		}
	}
}
