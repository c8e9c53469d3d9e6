package main

import (
	"flag"
	"fmt"

	"github.com/cogvlm-web/cogvlm-web/model/pkg"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
)

func accuracyFlags(fs *flag.FlagSet) func(env) error {
	var ref, pkgDir string
	fs.StringVar(&ref, "ref", "", "reference: Hugging Face checkpoint (or f32 package) folder `HF_DIR`; required")
	fs.StringVar(&pkgDir, "pkg", "", "package folder `PKG_DIR` to compare; required")
	return func(e env) error {
		if ref == "" || pkgDir == "" {
			return usagef("--ref and --pkg are required")
		}
		p, err := pkg.Open(pkgDir)
		if err != nil {
			return named(pkgDir, err)
		}
		cfg, tokPath := p.Config(), p.TokenizerPath()
		p.Close()
		tok, err := tokenizer.LoadJSON(tokPath)
		if err != nil {
			return err
		}
		cases, err := pkg.DefaultAccuracyCases(cfg, tok)
		if err != nil {
			return err
		}
		r, err := pkg.Accuracy(ref, pkgDir, cases)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%-12s %14s %10s %12s %8s\n", "case", "prefill cos", "min cos", "max |diff|", "top-1")
		for _, c := range r.Cases {
			fmt.Fprintf(e.stdout, "%-12s %14.5f %10.5f %12.4g %5d/%d\n", c.Name, c.PrefillCosine, c.MinCosine, c.MaxAbsDiff, c.Top1Agree, c.Steps)
		}
		for _, enc := range quant.Encodings {
			if s, ok := r.Stats[enc]; ok && s.Tensors > 0 {
				fmt.Fprintf(e.stdout, "%-4s %4d tensors %12d weights %6.3f bits/weight\n", enc, s.Tensors, s.Params, s.BitsPerWeight())
			}
		}
		fmt.Fprintf(e.stdout, "package: %.3f bits per weight\n", r.Stats[""].BitsPerWeight())
		return nil
	}
}

const accuracyDoc = `Compares a package with its reference checkpoint on built-in cases (text, and an image
when the model has a vision tower): the cosine similarity of the prefill logits, the
top-1 agreement over teacher-forced greedy steps, and the package's bits per weight.
`
