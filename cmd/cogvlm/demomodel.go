package main

import (
	"flag"
	"strings"

	"github.com/cogvlm-web/cogvlm-web/model/demo"
	"github.com/cogvlm-web/cogvlm-web/model/pkg/progress"
)

func demoModelFlags(fs *flag.FlagSet) func(env) error {
	var out, preset string
	var layers, visionLayers int
	fs.StringVar(&out, "out", "", "folder `DIR` to create (must not exist, or be empty); required")
	fs.StringVar(&preset, "preset", demo.TinyPreset, "checkpoint layout `NAME`: "+strings.Join(demo.PresetNames(), ", "))
	fs.IntVar(&layers, "layers", 0, "decoder layers `N` (default: the preset's)")
	fs.IntVar(&visionLayers, "vision-layers", 0, "vision tower layers `N` (default: the preset's)")
	return func(e env) error {
		if out == "" {
			return usagef("--out is required")
		}
		if e.set["layers"] && layers < 1 || e.set["vision-layers"] && visionLayers < 1 {
			return usagef("--layers and --vision-layers must be at least 1")
		}
		opts := demo.Options{Preset: preset, Layers: layers, VisionLayers: visionLayers}
		if _, err := demo.LookupPreset(preset); err != nil && preset != demo.TinyPreset {
			return usagef("--preset: %v", err)
		}
		var bar *progress.Bar
		if preset != demo.TinyPreset {
			bar = progress.New(e.stderr, "demo-model")
			opts.Progress = bar.Update
		}
		if err := demo.Generate(out, opts); err != nil {
			return err
		}
		if bar != nil {
			bar.Finish()
		}
		return nil
	}
}

const demoModelDoc = `Writes a deterministic CogVLM checkpoint with random weights in the Hugging Face layout
(sharded BF16 safetensors with model.safetensors.index.json, the real 32000-piece tokenizer).
--preset tiny (the default) is the small model the app embeds as its demo. The published
presets (cogvlm-chat-hf, cogvlm-base-490-hf, cogvlm-base-224-hf,
cogvlm-grounding-generalist-hf) are THUDM's checkpoints at real widths, byte for byte in
their published layout: config.json, the same tensor names, shapes, dtype and shard split,
and the per-layer rotary inv_freq buffers; weights are drawn at the scale of trained ones.
--layers and --vision-layers keep fewer layers (the shards are then split in proportion).
The full-size preset is about 35 GB; it is streamed with a few MB of memory.
`
