package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/cogvlm-web/cogvlm-web/model/pkg"
	"github.com/cogvlm-web/cogvlm-web/model/pkg/progress"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

func convertFlags(fs *flag.FlagSet) func(env) error {
	var in, out, q string
	var force, calibrate bool
	fs.StringVar(&in, "in", "", "Hugging Face checkpoint folder `HF_DIR`; required")
	fs.StringVar(&out, "out", "", "package folder `PKG_DIR` to create; required")
	fs.StringVar(&q, "quant", "q4", "encoding of the large matrices: q4, q8, f16 or f32")
	fs.BoolVar(&force, "force", false, "replace a non-empty PKG_DIR")
	fs.BoolVar(&calibrate, "calibrate", false, "choose the q4 levels with GPTQ on generated calibration prompts (models up to 1.07 B parameters; FORMAT.md)")
	return func(e env) error {
		if in == "" || out == "" {
			return usagef("--in and --out are required")
		}
		enc, err := quant.ParseEncoding(q)
		if err != nil {
			return usagef("--quant: %v", err)
		}
		// Ctrl-C, or SIGTERM (kill, a service manager, a CI timeout), stops between tensors;
		// the partial folder is removed, never left looking complete, and the error names the
		// signal. A SIGKILL's partial folder is removed by the next convert to PKG_DIR.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		bar := progress.New(e.stderr, "convert")
		if err := pkg.Convert(in, out, pkg.ConvertOptions{Quant: enc, Force: force, Calibrate: calibrate, Progress: bar.Update, Context: ctx}); err != nil {
			return err
		}
		bar.Finish()
		return nil
	}
}

const convertDoc = `Converts a Hugging Face CogVLM checkpoint (config.json, safetensors, tokenizer) into the
package the browser downloads: manifest.json, verified shards of tens of MiB, tokenizer.json.
It streams tensor by tensor and writes atomically (model/format/FORMAT.md). With --calibrate
the q4 levels minimise each layer's output error on generated calibration prompts (GPTQ)
instead of each weight's rounding error; that holds the model in memory.
`
