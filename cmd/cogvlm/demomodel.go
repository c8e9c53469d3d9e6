package main

import (
	"flag"

	"github.com/cogvlm-web/cogvlm-web/model/demo"
)

func demoModelFlags(fs *flag.FlagSet) func(env) error {
	var out string
	fs.StringVar(&out, "out", "", "folder `DIR` to create (must not exist, or be empty); required")
	return func(e env) error {
		if out == "" {
			return usagef("--out is required")
		}
		return demo.Write(out)
	}
}

const demoModelDoc = `Writes the deterministic tiny CogVLM checkpoint with random weights (Hugging Face layout,
sharded BF16 safetensors, the real 32000-piece tokenizer) that the app embeds as its demo.
`
