package model

import (
	"fmt"
	"strings"
)

// Token types of token_type_ids.
const (
	LanguageTokenType = 0
	VisionTokenType   = 1
)

// Templates are the prompt templates BuildPrompt knows (config.json's template_version
// names the one a checkpoint was trained with).
var Templates = []string{"chat", "vqa", "base"}

// BuildPrompt applies a template to the query and the earlier turns, as THUDM's
// _history_to_prompt does:
//
//	chat: "Question: {q} Answer: {a}\n" per turn, then "Question: {query} Answer:"
//	vqa:  the same with "Short answer:"
//	base: the query unchanged (history is ignored)
func BuildPrompt(template, query string, history [][2]string) (string, error) {
	var answer string
	switch template {
	case "chat":
		answer = " Answer:"
	case "vqa":
		answer = " Short answer:"
	case "base":
		return query, nil
	default:
		return "", fmt.Errorf("unknown template %q (want one of %s)", template, strings.Join(Templates, ", "))
	}
	var b strings.Builder
	for _, turn := range history {
		b.WriteString("Question: " + turn[0] + answer + " " + turn[1] + "\n")
	}
	b.WriteString("Question: " + query + answer)
	return b.String(), nil
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
// generated ones does not fit the model's context.
func CheckContextLength(promptTokens, maxNewTokens int, cfg Config) error {
	if promptTokens+maxNewTokens > cfg.MaxPositionEmbeddings {
		return fmt.Errorf("prompt of %d tokens + %d new tokens exceeds max_position_embeddings %d",
			promptTokens, maxNewTokens, cfg.MaxPositionEmbeddings)
	}
	return nil
}
