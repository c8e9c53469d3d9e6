package model

import "slices"

// The generation defaults, the one place the CLI, the engine and (through the engine's
// load summary) the page take them from. They are upstream's: THUDM's demos decode
// greedily (basic_demo/cli_demo_hf.py: do_sample False; the SAT demos: top_k 1), and
// CogVLM's generation_config.json carries only token ids. Upstream stops at max_length
// 2048 counting the prompt, the end of the context; we stop there too, or after
// DefaultMaxNewTokens, whichever comes first (--max-new-tokens and maxNewTokens go further).
const DefaultMaxNewTokens = 256

// DefaultSampling is greedy decoding of at most DefaultMaxNewTokens tokens. Its sampling
// settings take effect only with a temperature above 0: then plain temperature sampling
// (top-k, top-p and the repetition penalty off) from seed 0.
func DefaultSampling() Sampling {
	return Sampling{
		MaxNewTokens:      DefaultMaxNewTokens,
		Temperature:       0, // greedy
		TopK:              0, // off
		TopP:              1, // off
		RepetitionPenalty: 1, // off
		Seed:              0,
	}
}

// DefaultTemplate is the template for a question when none is asked for: the one the
// checkpoint was trained with (template_version, else chat) with an image; vicuna, the
// language model's own chat format, without one, as THUDM's demos wrap text-only
// questions.
func DefaultTemplate(cfg Config, hasImage bool) string {
	switch {
	case !hasImage:
		return "vicuna"
	case slices.Contains(Templates, cfg.TemplateVersion):
		return cfg.TemplateVersion
	}
	return "chat"
}
