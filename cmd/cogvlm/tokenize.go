package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
)

// maxLineBytes bounds one stdin line of tokenize: far beyond any prompt, small enough that
// a binary file piped in by mistake fails with a clear message.
const maxLineBytes = 16 << 20

func tokenizeFlags(fs *flag.FlagSet) func(env) error {
	var dir string
	var jsonl bool
	fs.StringVar(&dir, "model", "", "`DIR` holding tokenizer.model or tokenizer.json; required")
	fs.BoolVar(&jsonl, "jsonl", false, "read one JSON string per line from stdin, print one JSON array of ids per line; required")
	return func(e env) error {
		switch {
		case dir == "":
			return usagef("--model is required")
		case !jsonl:
			return usagef("--jsonl is required (the only input format)")
		}
		tok, err := tokenizer.Load(dir)
		if err != nil {
			return named(dir, err)
		}
		return tokenizeLines(e, tok)
	}
}

// tokenizeLines encodes each stdin line as the prompt is encoded: no bos, with the
// dummy-prefix space. Blank lines are skipped. Each output line is flushed at once, so a
// caller can feed strings one at a time through a pipe.
func tokenizeLines(e env, tok *tokenizer.Tokenizer) error {
	in := bufio.NewScanner(e.stdin)
	in.Buffer(make([]byte, 64<<10), maxLineBytes)
	out := bufio.NewWriter(e.stdout)
	for line := 1; in.Scan(); line++ {
		raw := strings.TrimSpace(in.Text())
		if raw == "" {
			continue
		}
		var text string
		if err := json.Unmarshal([]byte(raw), &text); err != nil {
			return fmt.Errorf("stdin line %d: want a JSON string: %v", line, err)
		}
		ids := tok.Encode(text)
		if ids == nil {
			ids = []int{} // "[]", not "null"
		}
		js, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		out.Write(js)
		out.WriteByte('\n')
		if err := out.Flush(); err != nil {
			return fmt.Errorf("writing to stdout: %v", err)
		}
	}
	if err := in.Err(); err != nil {
		return fmt.Errorf("reading stdin: %v", err)
	}
	return nil
}

const tokenizeDoc = `Reads one JSON string per line from stdin and prints, per line, the JSON array of its
token ids as a prompt is tokenized: no bos, with SentencePiece's leading-space prefix.
`
