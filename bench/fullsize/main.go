// Command fullsize is bench/fullsize.sh: the full-size rehearsal of internal/rehearsal at a
// published preset's real widths. Progress goes to stderr; the last line of stdout is one
// JSON object with the figures and "tokens_equal" / "offline_equal"; the exit status is 1
// when either is false or a step fails (the JSON's "failed" names the step).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/cogvlm-web/cogvlm-web/internal/rehearsal"
)

func main() {
	var o rehearsal.Options
	flag.StringVar(&o.Preset, "preset", "cogvlm-chat-hf", "demo-model `preset`")
	flag.IntVar(&o.Layers, "layers", 0, "decoder layers `N` (0: the preset's full depth)")
	flag.IntVar(&o.VisionLayer, "vision-layers", 0, "vision layers `N` (0: the preset's full depth)")
	flag.IntVar(&o.Tokens, "tokens", 8, "greedy tokens `N` per question")
	flag.StringVar(&o.Image, "image", "", "also ask about this image `FILE`")
	flag.StringVar(&o.Work, "work", "", "working `DIR` (default: a new folder under $TMPDIR, removed at the end)")
	flag.StringVar(&o.Query, "query", rehearsal.DefaultQuery, "the text question")
	flag.StringVar(&o.Template, "template", "", "prompt template (default: the page's and the CLI's own default)")
	flag.BoolVar(&o.Keep, "keep", false, "keep the working folder")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	if o.Repo, err = os.Getwd(); err != nil {
		fmt.Fprintln(os.Stderr, "fullsize:", err)
		os.Exit(1)
	}
	o.Log = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	var r rehearsal.Report
	err = rehearsal.Run(o, &r)
	if err != nil {
		r.Failed = err.Error()
		fmt.Fprintln(os.Stderr, "fullsize:", err)
	}
	line, _ := json.Marshal(r)
	fmt.Println(string(line))
	if err != nil || !r.TokensEqual || !r.OfflineEqual {
		os.Exit(1)
	}
}
