package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/grounding"
	"github.com/cogvlm-web/cogvlm-web/model/imageproc"
	"github.com/cogvlm-web/cogvlm-web/model/pkg"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
)

type generateOpts struct {
	model, query, image, history, template, dump string
	sampling                                     model.Sampling
	json                                         bool
	boxesOut                                     string // --boxes-out (boxes.go)
}

func generateFlags(fs *flag.FlagSet) func(env) error {
	var o generateOpts
	fs.StringVar(&o.model, "model", "", modelFlagDoc)
	fs.StringVar(&o.query, "query", "", "the question `TEXT`; required")
	fs.StringVar(&o.image, "image", "", "image `FILE` (PNG, JPEG, GIF, WebP); without it the prompt is text only")
	fs.StringVar(&o.history, "history", "", "earlier turns, a JSON `FILE` of [[\"question\", \"answer\"], ...]")
	fs.StringVar(&o.template, "template", "", templateFlagDoc)
	samplingFlags(fs, &o.sampling)
	fs.BoolVar(&o.json, "json", false, "print one JSON line with the ids and text instead of streaming the text")
	fs.StringVar(&o.dump, "dump", "", "write the reference tensors (pixel_values, vision_out, prefill_logits_last, step_logits, prefill_hidden_last) as float32 safetensors to `FILE`")
	boxesFlags(fs, &o)
	return func(e env) error { return generate(e, o) }
}

// The help of the flags generate and chat share.
var (
	modelFlagDoc    = "checkpoint `DIR` (Hugging Face layout: config.json, safetensors, tokenizer) or package; required"
	templateFlagDoc = "prompt `template`: " + strings.Join(model.Templates, ", ") +
		" (default: vicuna without --image; with one, config.json's template_version, else chat)"
)

// samplingFlags adds the generation settings of generate and chat, with
// model.DefaultSampling's values: greedy, as upstream (generation_config.json may say
// otherwise: applyGenerationConfig).
func samplingFlags(fs *flag.FlagSet, s *model.Sampling) {
	def := model.DefaultSampling()
	fs.IntVar(&s.MaxNewTokens, "max-new-tokens", def.MaxNewTokens, "generate at most `N` tokens; when not given, capped to the context left")
	fs.Float64Var(&s.Temperature, "temperature", def.Temperature, "sampling temperature `T`; 0, the default, is greedy (as upstream)")
	fs.Float64Var(&s.TopP, "top-p", def.TopP, "nucleus sampling: keep the most likely tokens up to probability `P`; 1 is off")
	fs.IntVar(&s.TopK, "top-k", def.TopK, "keep the `K` most likely tokens; 0 is off")
	fs.Float64Var(&s.RepetitionPenalty, "repetition-penalty", def.RepetitionPenalty, "Hugging Face repetition penalty `R`; 1 is off")
	fs.Uint64Var(&s.Seed, "seed", def.Seed, "sampling seed `S`: equal settings and seed give equal text")
}

// capMaxNewTokens makes the default --max-new-tokens a cap, not a demand
// (model.CapNewTokens): it shrinks to the context left after a prompt of n tokens.
func capMaxNewTokens(set map[string]bool, s *model.Sampling, n int, cfg model.Config) {
	if !set["max-new-tokens"] {
		s.MaxNewTokens = model.CapNewTokens(s.MaxNewTokens, n, cfg.MaxPositionEmbeddings)
	}
}

// checkUsage refuses a command line that cannot mean anything (exit 2), before any file
// is read.
func (o *generateOpts) checkUsage() error {
	switch {
	case o.model == "":
		return usagef("--model is required")
	case o.query == "":
		return usagef("--query is required")
	case o.template != "" && !slices.Contains(model.Templates, o.template):
		return usagef("unknown --template %q (want one of %s)", o.template, strings.Join(model.Templates, ", "))
	}
	if err := o.checkBoxesUsage(); err != nil {
		return err
	}
	// The sampler's own checks, as usage errors: they are about the command line.
	if _, err := model.NewSampler(o.sampling, 1); err != nil {
		return usageError{err.Error()}
	}
	return nil
}

func generate(e env, o generateOpts) error {
	if err := o.checkUsage(); err != nil {
		return err
	}
	if err := checkDumpTarget(o.dump); err != nil {
		return err
	}
	cfg, err := loadConfig(o.model)
	if err != nil {
		return err
	}
	if err := applyGenerationConfig(filepath.Join(o.model, "generation_config.json"), e.set, &o.sampling); err != nil {
		return err
	}
	if o.template == "" {
		o.template = model.DefaultTemplate(cfg, o.image != "")
	}
	history, err := readHistory(o.history, cfg)
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(o.model)
	if err != nil {
		return named(o.model, err)
	}
	// The image before the weights: a bad file should fail in milliseconds, not after a
	// multi-gigabyte load.
	var pixels []float32
	if o.image != "" {
		// An image_size the preprocessing cannot produce is the model's fault: say so
		// before the image is opened, naming the model rather than the image.
		if err := imageproc.CheckTargetSize(cfg.Vision.ImageSize, 0); err != nil {
			return named(o.model, err)
		}
		if pixels, err = preprocessImage(o.image, cfg.Vision.ImageSize); err != nil {
			return err
		}
	}

	in, err := model.PromptInputs(tok, o.template, o.query, history, pixels != nil, cfg)
	if err != nil {
		return err
	}
	capMaxNewTokens(e.set, &o.sampling, len(in.InputIDs), cfg)
	if err := model.CheckContextLength(len(in.InputIDs), o.sampling.MaxNewTokens, cfg); err != nil {
		return err
	}

	loadStart := time.Now()
	m, err := loadModel(o.model, cfg)
	if err != nil {
		return err
	}
	loadTime := time.Since(loadStart)
	o.sampling.KeepStepLogits = o.dump != ""
	stream := tok.NewStreamDecoder()
	var writeErr error
	res, err := m.Generate(in, pixels, o.sampling, func(id int) bool {
		if !o.json {
			_, writeErr = fmt.Fprint(e.stdout, stream.Push(id))
		}
		return writeErr == nil // stdout closed (a pipe's reader quit): stop generating
	})
	if err != nil {
		return err
	}
	if writeErr != nil {
		return fmt.Errorf("writing to stdout: %v", writeErr)
	}
	if o.dump != "" {
		if err := writeDump(o.dump, cfg, pixels, res); err != nil {
			return err
		}
	}
	text := tok.Decode(res.GeneratedIDs)
	if !o.json {
		if _, err := fmt.Fprintln(e.stdout, stream.Flush()); err != nil {
			return err
		}
		_, err := answerBoxes(o, text) // the answer is out before --boxes-out is written
		return err
	}
	boxes, err := answerBoxes(o, text)
	if err != nil {
		return err
	}
	return writeJSONResult(e, res, text, boxes, loadTime)
}

// loadConfig reads the config of a package (from its manifest) or of a Hugging Face
// checkpoint folder (config.json).
func loadConfig(dir string) (model.Config, error) {
	if pkg.IsPackage(dir) {
		p, err := pkg.Open(dir)
		if err != nil {
			return model.Config{}, named(dir, err)
		}
		defer p.Close()
		return p.Config(), nil
	}
	configPath := filepath.Join(dir, "config.json")
	cfg, err := model.LoadConfig(configPath)
	if err != nil {
		return model.Config{}, named(configPath, err)
	}
	return cfg, nil
}

// loadModel reads a checkpoint into float32, or a package's weight matrices as stored
// (q4/q8/f16, memory-mapped: about the package's size), and closes the files.
func loadModel(dir string, cfg model.Config) (*model.Model, error) {
	if pkg.IsPackage(dir) {
		p, err := pkg.Open(dir)
		if err != nil {
			return nil, named(dir, err)
		}
		defer p.Close()
		m, err := model.Load(cfg, p)
		if err != nil {
			return nil, named(dir, err)
		}
		return m, nil
	}
	ckpt, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return nil, named(dir, err)
	}
	defer ckpt.Close()
	m, err := model.Load(cfg, ckpt)
	if err != nil {
		return nil, named(dir, err)
	}
	return m, nil
}

// generationConfig holds the sampling keys of generation_config.json (Hugging Face's
// GenerationConfig). max_length is ignored: it counts the prompt, and the prompt of an
// image query is over a thousand tokens; the context's end caps generation anyway.
type generationConfig struct {
	DoSample          *bool    `json:"do_sample"`
	Temperature       *float64 `json:"temperature"`
	TopP              *float64 `json:"top_p"`
	TopK              *int     `json:"top_k"`
	RepetitionPenalty *float64 `json:"repetition_penalty"`
	MaxNewTokens      *int     `json:"max_new_tokens"`
}

// applyGenerationConfig sets the sampling settings that the command line left at their
// defaults from path, when it exists, with transformers' meaning: do_sample (false when
// absent) decides between greedy and sampling, and temperature counts only when sampling;
// sampling without a temperature or top_k in the file uses transformers' 1.0 and 50.
func applyGenerationConfig(path string, set map[string]bool, s *model.Sampling) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var g generationConfig
	if err := json.Unmarshal(data, &g); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	apply := func(flag string, v *float64, dst *float64) {
		if v != nil && !set[flag] {
			*dst = *v
		}
	}
	apply("top-p", g.TopP, &s.TopP)
	apply("repetition-penalty", g.RepetitionPenalty, &s.RepetitionPenalty)
	sample := g.DoSample != nil && *g.DoSample
	if !set["temperature"] {
		s.Temperature = 0 // greedy
		if sample {
			s.Temperature = 1 // transformers' default
			apply("temperature", g.Temperature, &s.Temperature)
		}
	}
	if sample && g.TopK == nil && !set["top-k"] {
		s.TopK = 50 // transformers' default
	}
	if g.TopK != nil && !set["top-k"] {
		s.TopK = *g.TopK
	}
	if g.MaxNewTokens != nil && !set["max-new-tokens"] {
		s.MaxNewTokens = *g.MaxNewTokens
	}
	if _, err := model.NewSampler(*s, 1); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

// readHistory reads --history: [["question", "answer"], ...]. A file too large for any
// prompt that fits cfg's context is refused before it is read whole: its JSON may spell a
// byte of text in up to 6 ("\u00e9" is 2 bytes of UTF-8), so it may have up to
// maxHistoryExpansion × model.MaxPromptBytes bytes.
func readHistory(path string, cfg model.Config) ([][2]string, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	limit := int64(model.MaxPromptBytes(cfg)) * maxHistoryExpansion
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes, too long for any prompt that fits max_position_embeddings %d", path, limit, cfg.MaxPositionEmbeddings)
	}
	var turns [][]string
	if err := json.Unmarshal(data, &turns); err != nil {
		return nil, fmt.Errorf("%s: want a JSON list of [question, answer] pairs: %v", path, err)
	}
	history := make([][2]string, len(turns))
	for i, t := range turns {
		if len(t) != 2 {
			return nil, fmt.Errorf("%s: turn %d has %d strings, want [question, answer]", path, i, len(t))
		}
		history[i] = [2]string{t[0], t[1]}
	}
	return history, nil
}

// maxHistoryExpansion is how many bytes of JSON one byte of history text can take, at most
// (a \uXXXX escape for one byte), rounded up for the brackets and quotes.
const maxHistoryExpansion = 8

// preprocessImage turns the image file into pixel_values [3, size, size].
func preprocessImage(path string, size int) ([]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pixels, err := imageproc.Preprocess(f, size, 0)
	if err != nil {
		return nil, named(path, err)
	}
	return pixels, nil
}

// writeDump writes the tensors of testdata/golden/README.md's expected.safetensors that
// this run computed, float32, so that they can be compared with the reference.
func writeDump(path string, cfg model.Config, pixels []float32, res *model.Result) error {
	if err := checkDumpTarget(path); err != nil {
		return err
	}
	H, V := cfg.HiddenSize, cfg.VocabSize
	var tensors []safetensors.Tensor
	add := func(name string, shape []int, v []float32) {
		tensors = append(tensors, safetensors.EncodeFloat32(name, shape, v, safetensors.F32))
	}
	if pixels != nil {
		S := cfg.Vision.ImageSize
		add("pixel_values", []int{1, cfg.Vision.InChannels, S, S}, pixels)
		add("vision_out", []int{1, len(res.VisionOut) / H, H}, res.VisionOut)
	}
	add("prefill_logits_last", []int{V}, res.PrefillLogitsLast)
	add("step_logits", []int{len(res.StepLogits) / V, V}, res.StepLogits)
	add("prefill_hidden_last", []int{H}, res.PrefillHiddenLast)
	return safetensors.WriteFile(path, tensors, map[string]string{"format": "pt"})
}

// jsonResult is the --json line; the field order is the contract's.
type jsonResult struct {
	InputIDs      []int  `json:"input_ids"`
	TokenTypeIDs  []int  `json:"token_type_ids"`
	PositionIDs   []int  `json:"position_ids"`
	GeneratedIDs  []int  `json:"generated_ids"`
	GeneratedText string `json:"generated_text"`
	// Boxes are the answer's grounding boxes ([[x0,y0,x1,y1]]) in pixels of --image.
	Boxes []grounding.PixelBox `json:"boxes"`
}

// jsonStats is where the time went, one JSON line on stderr after "stats: " with --json
// (bench/fullsize compares it with the page's stats); stdout stays the same bytes for the
// same inputs.
type jsonStats struct {
	LoadMs        float64 `json:"load_ms"`
	VisionMs      float64 `json:"vision_ms"`
	PrefillMs     float64 `json:"prefill_ms"`
	PrefillTokens int     `json:"prefill_tokens"`
	DecodeMs      float64 `json:"decode_ms"`
	DecodeTokens  int     `json:"decode_tokens"`
	// ReusedTokens of the prompt came from the KV cache (chat's follow-ups); FirstTokenMs
	// is the time from the question to the first token.
	ReusedTokens int     `json:"reused_tokens"`
	FirstTokenMs float64 `json:"first_token_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func writeJSONResult(e env, res *model.Result, text string, boxes []grounding.PixelBox, load time.Duration) error {
	nonNil := func(v []int) []int { // [] rather than null
		if v == nil {
			return []int{}
		}
		return v
	}
	stats, _ := json.Marshal(jsonStats{
		LoadMs: ms(load), VisionMs: ms(res.Stats.Vision),
		PrefillMs: ms(res.Stats.Prefill), PrefillTokens: res.Stats.PrefillTokens,
		DecodeMs: ms(res.Stats.Decode), DecodeTokens: res.Stats.DecodeTokens,
		ReusedTokens: res.Stats.ReusedTokens, FirstTokenMs: ms(res.Stats.FirstToken),
	})
	fmt.Fprintf(e.stderr, "stats: %s\n", stats)
	enc := json.NewEncoder(e.stdout) // one line, newline included
	enc.SetEscapeHTML(false)         // "<" stays "<" in generated_text
	return enc.Encode(jsonResult{
		InputIDs:      nonNil(res.Inputs.InputIDs),
		TokenTypeIDs:  nonNil(res.Inputs.TokenTypeIDs),
		PositionIDs:   nonNil(res.Inputs.PositionIDs),
		GeneratedIDs:  nonNil(res.GeneratedIDs),
		GeneratedText: text,
		Boxes:         boxes,
	})
}

const generateDoc = `Prints the answer as it is generated; with --json, one line of JSON instead:
{"input_ids":[...],"token_type_ids":[...],"position_ids":[...],"generated_ids":[...],"generated_text":"...",
 "boxes":[{"x0":64,"y0":60,"x1":320,"y1":180,"label":"the dog"}]}
boxes are the [[x0,y0,x1,y1]] boxes of a grounding answer in pixels of --image ([] without).
Decoding is greedy unless asked otherwise, as in THUDM's demos: sampling flags not given
take their value from the checkpoint's generation_config.json, read as transformers does
(greedy unless do_sample is true), else the defaults below. --temperature 0 is greedy; a
temperature above 0 samples.
A question without --image is put in Vicuna's chat format (--template vicuna) unless
--template says otherwise.
`
