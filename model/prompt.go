package model

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Token types of token_type_ids.
const (
	LanguageTokenType = 0
	VisionTokenType   = 1
)

// Templates are the prompt templates BuildPrompt and PromptIDs know (config.json's
// template_version names the one a checkpoint was trained with; vicuna is the chat format
// of its language model, for questions without an image).
var Templates = []string{"chat", "vqa", "base", "vicuna"}

// VicunaSystemPrompt is the system prompt of FastChat's vicuna_v1.1 conversation template,
// which THUDM's basic_demo/cli_demo_hf.py puts before text-only questions.
const VicunaSystemPrompt = "A chat between a curious user and an artificial intelligence assistant. " +
	"The assistant gives helpful, detailed, and polite answers to the user's questions."

// eosText is how the vicuna template writes the end of an answer in BuildPrompt's text
// form; PromptIDs puts the eos id there instead.
const eosText = "</s>"

// BuildPrompt applies a template to the query and the earlier turns and returns the
// prompt as text:
//
//	chat:   "Question: {q} Answer: {a}\n" per turn, then "Question: {query} Answer:"
//	vqa:    the same with "Short answer:"
//	base:   the query unchanged (history is ignored)
//	vicuna: VicunaSystemPrompt + " USER: {q} ASSISTANT: {a}</s>" per turn, then
//	        "USER: {query} ASSISTANT:" (the turns after the first without the space)
//
// chat, vqa and base are THUDM's _history_to_prompt; vicuna is FastChat's vicuna_v1.1
// (get_prompt of SeparatorStyle.ADD_COLON_TWO with sep " " and sep2 "</s>"). Its "</s>" is
// the eos token, not text: tokenize a prompt with PromptIDs, which puts the eos id there
// (BuildPrompt's text shows the prompt; encoding it would spell "</s>" out in pieces).
func BuildPrompt(template, query string, history [][2]string) (string, error) {
	segments, err := promptSegments(template, query, history)
	if err != nil {
		return "", err
	}
	return strings.Join(segments, eosText), nil
}

// promptSegments is the prompt as the text between its eos tokens: one segment for chat,
// vqa and base, one per turn for vicuna.
func promptSegments(template, query string, history [][2]string) ([]string, error) {
	var answer string
	switch template {
	case "chat":
		answer = " Answer:"
	case "vqa":
		answer = " Short answer:"
	case "base":
		return []string{query}, nil
	case "vicuna":
		return vicunaSegments(query, history), nil
	default:
		return nil, fmt.Errorf("unknown template %q (want one of %s)", template, strings.Join(Templates, ", "))
	}
	var b strings.Builder
	for _, turn := range history {
		b.WriteString("Question: " + turn[0] + answer + " " + turn[1] + "\n")
	}
	b.WriteString("Question: " + query + answer)
	return []string{b.String()}, nil
}

// vicunaSegments is FastChat's ADD_COLON_TWO get_prompt over the messages USER q1,
// ASSISTANT a1, …, USER query, ASSISTANT (empty: the answer to generate), cut at its
// sep2 "</s>": system + sep, then per message role + ": " + message + sep (USER) or sep2
// (ASSISTANT), or role + ":" alone for an empty message, as get_prompt writes it.
func vicunaSegments(query string, history [][2]string) []string {
	var b strings.Builder
	segments := make([]string, 0, len(history)+1)
	b.WriteString(VicunaSystemPrompt + " ")
	message := func(role, text string) {
		switch {
		case text == "":
			b.WriteString(role + ":")
		case role == "USER":
			b.WriteString(role + ": " + text + " ")
		default: // an answer, then sep2: the eos token
			b.WriteString(role + ": " + text)
			segments = append(segments, b.String())
			b.Reset()
		}
	}
	for _, turn := range history {
		message("USER", turn[0])
		message("ASSISTANT", turn[1])
	}
	message("USER", query)
	message("ASSISTANT", "") // the answer to generate
	return append(segments, b.String())
}

// maxBytesPerToken bounds the input bytes one token can stand for: no piece of the LLaMA
// vocabulary is longer (the longest, a run of 16 "▁", stands for 48 bytes of literal
// U+2581; TestMaxBytesPerToken holds the real vocabulary to it). A text of more bytes
// than maxBytesPerToken × n has more than n tokens, known before tokenizing it.
const maxBytesPerToken = 64

// MaxPromptBytes is the longest prompt text, in bytes, that can fit cfg's context: longer
// text is refused before it is tokenized (which costs time and memory in its length).
func MaxPromptBytes(cfg Config) int {
	return min(max(0, cfg.MaxPositionEmbeddings), math.MaxInt/maxBytesPerToken) * maxBytesPerToken // saturating, not wrapping
}

// PromptTokenizer is what PromptIDs needs of a tokenizer (*tokenizer.Tokenizer has it).
type PromptTokenizer interface {
	Encode(text string) []int             // text at the start of the prompt: with the dummy prefix
	EncodeAfterSpecial(text string) []int // text right after a special token: without it
	EOS() int
}

// PromptIDs is the prompt's token ids without bos (BuildInputs' textIDs): the template
// applied to the query and history, tokenized as Hugging Face's LlamaTokenizer with
// vicuna-7b-v1.5's settings tokenizes the whole prompt string. For chat, vqa and base that
// is Encode of BuildPrompt's text. vicuna's "</s>" after each earlier answer becomes the
// eos id (LlamaTokenizer splits special tokens out of the text), and the text after it is
// encoded without the dummy prefix (its legacy=false). A "</s>" or "<s>" that the user
// typed stays text: only the template puts control tokens in a prompt.
//
// A prompt whose text cannot fit cfg's context (MaxPromptBytes) is refused before it is
// tokenized; CheckContextLength checks the tokens.
func PromptIDs(tok PromptTokenizer, template, query string, history [][2]string, cfg Config) ([]int, error) {
	segments, err := promptSegments(template, query, history)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, s := range segments {
		n += len(s)
	}
	if limit := MaxPromptBytes(cfg); n > limit {
		return nil, contextErrorf("prompt of %d bytes cannot fit max_position_embeddings %d (at most %d bytes; shorten the question or the history)",
			n, cfg.MaxPositionEmbeddings, limit)
	}
	ids := tok.Encode(segments[0])
	for _, s := range segments[1:] {
		ids = append(ids, tok.EOS())
		ids = append(ids, tok.EncodeAfterSpecial(s)...)
	}
	return ids, nil
}

// PromptInputs is a question's decoder inputs: PromptIDs laid out by BuildInputs, with
// the image's tokens when hasImage. Its errors are PromptIDs'.
func PromptInputs(tok PromptTokenizer, template, query string, history [][2]string, hasImage bool, cfg Config) (Inputs, error) {
	textIDs, err := PromptIDs(tok, template, query, history, cfg)
	if err != nil {
		return Inputs{}, err
	}
	return BuildInputs(textIDs, hasImage, cfg), nil
}

// Inputs are a prompt's decoder inputs, one entry per token.
type Inputs struct {
	InputIDs     []int // bos, a pad placeholder per image token, the prompt's token ids
	TokenTypeIDs []int // LanguageTokenType or VisionTokenType
	PositionIDs  []int // rotary positions (image patches share one)
}

// BuildInputs lays out a prompt: [bos] + [pad]×NumImageTokens + textIDs with an image,
// [bos] + textIDs without. textIDs are the prompt's token ids without special tokens.
func BuildInputs(textIDs []int, hasImage bool, cfg Config) Inputs {
	var in Inputs
	in.InputIDs = append(in.InputIDs, cfg.BOSTokenID)
	in.TokenTypeIDs = append(in.TokenTypeIDs, LanguageTokenType)
	if hasImage {
		for range cfg.NumImageTokens() {
			in.InputIDs = append(in.InputIDs, cfg.PadTokenID)
			in.TokenTypeIDs = append(in.TokenTypeIDs, VisionTokenType)
		}
	}
	for _, id := range textIDs {
		in.InputIDs = append(in.InputIDs, id)
		in.TokenTypeIDs = append(in.TokenTypeIDs, LanguageTokenType)
	}
	in.PositionIDs = PositionIDs(in.TokenTypeIDs)
	return in
}

// VisionExpertMask reports, per token, whether it goes through the vision expert.
func (in Inputs) VisionExpertMask() []bool { return VisionExpertMask(in.TokenTypeIDs) }

// VisionExpertMask is CogVLM's routing rule: token i uses the vision expert iff it is a
// vision token and so is token i+1. That sends boi and the patches to the vision expert
// and eoi (the last vision token before text) to the language expert.
func VisionExpertMask(tokenTypeIDs []int) []bool {
	mask := make([]bool, len(tokenTypeIDs))
	for i := 0; i+1 < len(tokenTypeIDs); i++ {
		mask[i] = tokenTypeIDs[i] == VisionTokenType && tokenTypeIDs[i+1] == VisionTokenType
	}
	return mask
}

// PositionIDs is CogVLM's build_position_ids: the first and last token of every run of
// vision tokens (boi, eoi) count as language tokens, and the vision tokens between them
// all share the position after boi. [bos, boi, p, p, p, p, eoi, text…] → [0, 1, 2, 2, 2,
// 2, 3, 4, …].
func PositionIDs(tokenTypeIDs []int) []int {
	n := len(tokenTypeIDs)
	// boi and eoi are vision tokens next to a language token or the sequence's end
	lang := make([]bool, n)
	for i, t := range tokenTypeIDs {
		first := i == 0 || tokenTypeIDs[i-1] == LanguageTokenType
		last := i == n-1 || tokenTypeIDs[i+1] == LanguageTokenType
		lang[i] = t == LanguageTokenType || first || last
	}
	// a token advances the position if it is language, or the first interior vision
	// token after one (lang[i-1]); the first token is position 0
	pos := make([]int, n)
	for i := 1; i < n; i++ {
		pos[i] = pos[i-1]
		if lang[i] || lang[i-1] {
			pos[i]++
		}
	}
	return pos
}

// CheckContextLength fails when a prompt of promptTokens tokens plus maxNewTokens
// generated ones does not fit the model's context. It compares without adding, so that no
// count, however large, wraps around.
func CheckContextLength(promptTokens, maxNewTokens int, cfg Config) error {
	switch {
	case promptTokens < 0 || maxNewTokens < 0:
		return fmt.Errorf("prompt of %d tokens + %d new tokens: counts must not be negative", promptTokens, maxNewTokens)
	case promptTokens > cfg.MaxPositionEmbeddings || maxNewTokens > cfg.MaxPositionEmbeddings-promptTokens:
		return contextErrorf("prompt of %d tokens + %d new tokens exceeds max_position_embeddings %d",
			promptTokens, maxNewTokens, cfg.MaxPositionEmbeddings)
	}
	return nil
}

// CapNewTokens makes a default number of new tokens a cap, not a demand: maxNewTokens
// shrinks to the context of contextTokens left after a prompt of promptTokens (but stays
// at least 1, so that a prompt filling the context is still refused by
// CheckContextLength). The CLI's --max-new-tokens and the engine's maxNewTokens, left out,
// are capped so; given, they are demands.
func CapNewTokens(maxNewTokens, promptTokens, contextTokens int) int {
	return min(maxNewTokens, max(1, contextTokens-promptTokens))
}

// ErrContextLength is what the errors of CheckContextLength and PromptIDs match (errors.Is)
// when a prompt and its new tokens cannot fit the context, so that a caller can tell
// them from bad input.
var ErrContextLength = errors.New("the prompt and its new tokens exceed the context")

// contextError is a context-length error with its own message.
type contextError struct{ msg string }

func (e contextError) Error() string { return e.msg }
func (e contextError) Unwrap() error { return ErrContextLength }

func contextErrorf(format string, args ...any) error {
	return contextError{fmt.Sprintf(format, args...)}
}
