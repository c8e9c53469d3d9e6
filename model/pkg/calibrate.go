package pkg

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/format"
	"github.com/cogvlm-web/cogvlm-web/model/imageproc"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/model/quant/gptq"
	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
)

// Calibration: the activations GPTQ (gptq.QuantizeQ4) weighs each q4 tensor's error
// by. The inputs are generic and generated here, never a test's: procedurally drawn
// images (flat colours, gradients, stripes, checkers, rings, shapes, smooth noise), each
// with a question in the chat or vqa template, and text prompts in the base and chat
// templates.

// DefaultCalibrationImages is the number of calibration images: each contributes
// grid² + 1 rows to every vision-tower Linear, grid² to the adapter's and grid² + 1 to the
// decoder's vision expert, enough rows for the tiny models' widest input (256) several
// times over.
const DefaultCalibrationImages = 128

// MaxCalibrationParams bounds the models ConvertOptions.Calibrate converts: calibration
// holds the whole model in float32 (4 bytes per parameter) and runs the calibration
// prompts through it once per stage. CogVLM-17B is far beyond it (FORMAT.md has the
// cost); the tiny test models have a few million parameters.
const MaxCalibrationParams = 1 << 30

// calibrationParamLimit is MaxCalibrationParams; tests lower it.
var calibrationParamLimit int64 = MaxCalibrationParams

// calibrate quantizes the plan's q4 tensors with GPTQ (sequentially, gptq.DefaultDamp) on
// the calibration prompts, into c.gptq, before anything is written.
func (c *conversion) calibrate(ctx context.Context) error {
	var params int64
	q4 := 0
	for _, t := range c.manifest.Tensors {
		params += t.Numel()
		if t.Encoding == quant.Q4 {
			q4++
		}
	}
	if params > calibrationParamLimit {
		return fmt.Errorf("%s: calibration holds the model in float32 in memory (%.1f GB here) and runs it once per stage: it is limited to %d parameters, the model has %d; convert without it",
			c.in, float64(4*params)/1e9, calibrationParamLimit, params)
	}
	if q4 == 0 {
		return fmt.Errorf("%s: calibration chooses q4 levels, and the policy gives no tensor q4", c.in)
	}
	m, err := model.Load(c.cfg, c.ckpt)
	if err != nil {
		return err
	}
	cases, err := calibrationCases(c.cfg, c.tok, DefaultCalibrationImages)
	if err != nil {
		return fmt.Errorf("%s: %v", c.in, err)
	}
	c.gptq, err = gptqQuantize(ctx, m, c.manifest.Tensors, cases, gptqOptions{damp: gptq.DefaultDamp, sequential: true})
	if err != nil {
		return fmt.Errorf("%s: calibration: %w", c.in, err)
	}
	return nil
}

// calibrationQuestions are asked about the calibration images.
var calibrationQuestions = []string{
	"Describe the picture.",
	"What colours do you see?",
	"How many shapes are there?",
	"Is there anything round here?",
	"What is the background colour?",
	"Where is the brightest part of this picture?",
	"Can you read any text in it?",
	"What pattern does this show?",
	"Is this a photograph or a drawing?",
	"Which object is the largest?",
	"Describe the scene in detail, please.",
	"What is on the left side?",
}

// calibrationTexts are the text-only prompts: completions (base template) and questions
// (chat template).
var calibrationTexts = []struct{ template, text string }{
	{"base", "Once upon a time, in a small village by the sea,"},
	{"base", "The capital of France is"},
	{"base", "In 1969, two astronauts landed on the moon and"},
	{"base", "def fibonacci(n):\n    if n < 2:\n        return n\n"},
	{"base", "Water boils at 100 degrees Celsius at sea level, but on a mountain"},
	{"base", "My favourite pancake recipe needs flour, eggs, milk and"},
	{"base", "The stock market fell sharply on Monday after the central bank"},
	{"base", "Photosynthesis converts light energy into"},
	{"base", "Dear customer, thank you for your order. Your package"},
	{"base", "List three prime numbers: 2, 3,"},
	{"base", "She opened the door slowly and saw"},
	{"base", "1. Preheat the oven to 200°C.\n2."},
	{"chat", "How do I sort a list in Python?"},
	{"chat", "Why is the sky blue?"},
	{"chat", "Translate 'good morning' into German."},
	{"chat", "What is the square root of 144?"},
}

// calibrationCase is one calibration prompt: decoder inputs and, for an image prompt,
// its pixel_values.
type calibrationCase struct {
	inputs model.Inputs
	pixels []float32 // nil: text only
}

// calibrationCases builds the calibration prompts for cfg: images image prompts, then the
// text prompts.
func calibrationCases(cfg model.Config, tok *tokenizer.Tokenizer, images int) ([]calibrationCase, error) {
	return calibrationCasesSeed(cfg, tok, images, 0)
}

// calibrationCasesSeed is calibrationCases with another draw of the images for each seed
// (the converter's is seed 0; the design test measures the others).
func calibrationCasesSeed(cfg model.Config, tok *tokenizer.Tokenizer, images int, seed uint64) ([]calibrationCase, error) {
	var cases []calibrationCase
	for i := range images {
		template := []string{"chat", "vqa"}[i%2]
		prompt, err := model.BuildPrompt(template, calibrationQuestions[i%len(calibrationQuestions)], nil)
		if err != nil {
			return nil, err
		}
		cases = append(cases, calibrationCase{
			inputs: model.BuildInputs(tok.Encode(prompt), true, cfg),
			pixels: calibrationPixels(cfg.Vision, i, seed),
		})
	}
	for _, p := range calibrationTexts {
		prompt, err := model.BuildPrompt(p.template, p.text, nil)
		if err != nil {
			return nil, err
		}
		cases = append(cases, calibrationCase{inputs: model.BuildInputs(tok.Encode(prompt), false, cfg)})
	}
	for _, c := range cases {
		if err := model.CheckContextLength(len(c.inputs.InputIDs), 0, cfg); err != nil {
			return nil, fmt.Errorf("calibration prompt: %v", err)
		}
	}
	return cases, nil
}

// calibrationPixels draws calibration image number i (one pattern kind per i, sizes and
// colours from a generator seeded by i) and preprocesses it as a real image is: bicubic
// resize to the tower's size, CLIP normalisation.
func calibrationPixels(cfg model.VisionConfig, i int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(uint64(i), 0x63616c6962+seed)) // "calib"
	w, h := 24+r.IntN(56), 24+r.IntN(56)
	img := &imageproc.RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
	colour := func() [3]float64 {
		return [3]float64{r.Float64() * 255, r.Float64() * 255, r.Float64() * 255}
	}
	set := func(x, y int, c [3]float64) {
		for ch := range 3 {
			img.Pix[(y*w+x)*3+ch] = uint8(math.Round(min(max(c[ch], 0), 255)))
		}
	}
	mix := func(a, b [3]float64, t float64) [3]float64 {
		return [3]float64{a[0] + (b[0]-a[0])*t, a[1] + (b[1]-a[1])*t, a[2] + (b[2]-a[2])*t}
	}
	a, b := colour(), colour()
	angle := r.Float64() * 2 * math.Pi
	dx, dy := math.Cos(angle), math.Sin(angle)
	period := 3 + r.Float64()*12
	cx, cy := r.Float64()*float64(w), r.Float64()*float64(h)
	type shape struct {
		x0, y0, x1, y1 float64
		c              [3]float64
	}
	var shapes []shape
	for range 1 + r.IntN(4) {
		x0, y0 := r.Float64()*float64(w), r.Float64()*float64(h)
		shapes = append(shapes, shape{x0, y0, x0 + 4 + r.Float64()*float64(w)/2, y0 + 4 + r.Float64()*float64(h)/2, colour()})
	}
	var waves [4][4]float64 // per wave: frequency x, frequency y, phase, amplitude
	for j := range waves {
		waves[j] = [4]float64{r.Float64() * 0.4, r.Float64() * 0.4, r.Float64() * 2 * math.Pi, 0.2 + r.Float64()}
	}
	kind := i % 8
	for y := range h {
		for x := range w {
			fx, fy := float64(x), float64(y)
			var c [3]float64
			switch kind {
			case 0: // flat colour
				c = a
			case 1: // linear gradient at an angle
				t := (fx*dx + fy*dy) / math.Hypot(float64(w), float64(h))
				c = mix(a, b, t+0.5)
			case 2: // stripes at an angle
				c = a
				if math.Mod(math.Abs(fx*dx+fy*dy), period) < period/2 {
					c = b
				}
			case 3: // checkerboard
				c = a
				if (int(fx/period)+int(fy/period))%2 == 0 {
					c = b
				}
			case 4: // rectangles on a flat background
				c = a
				for _, s := range shapes {
					if fx >= s.x0 && fx < s.x1 && fy >= s.y0 && fy < s.y1 {
						c = s.c
					}
				}
			case 5: // concentric rings
				t := math.Hypot(fx-cx, fy-cy) / period
				c = mix(a, b, 0.5+0.5*math.Sin(t*math.Pi))
			case 6: // ellipses on a vertical gradient
				c = mix(a, b, fy/float64(h))
				for _, s := range shapes {
					ex, ey := (s.x0+s.x1)/2, (s.y0+s.y1)/2
					rx, ry := (s.x1-s.x0)/2, (s.y1-s.y0)/2
					if (fx-ex)*(fx-ex)/(rx*rx)+(fy-ey)*(fy-ey)/(ry*ry) <= 1 {
						c = s.c
					}
				}
			case 7: // smooth noise: a sum of waves per channel
				for ch := range 3 {
					var v float64
					for j, wv := range waves {
						v += wv[3] * math.Sin(wv[0]*fx*float64(ch+1)+wv[1]*fy+wv[2]+float64(j))
					}
					c[ch] = 128 + 50*v
				}
			}
			set(x, y, c)
		}
	}
	return imageproc.Normalize(imageproc.ResizeBicubic(img, cfg.ImageSize, cfg.ImageSize), imageproc.CLIPMean, imageproc.CLIPStd)
}

// q4Tensor is a GPTQ-quantized tensor: qweight and scales as quant.QuantizeQ4Into writes
// them.
type q4Tensor struct {
	qweight []uint32
	scales  []uint16
}

// calibrationStage names the set of Linear weights whose inputs one calibration pass
// collects: weights whose inputs do not depend on each other share a stage (both experts'
// projections of a decoder layer; gate and up, which read the same input), so that each
// stage's inputs come from the model with every earlier stage already quantized. A stage
// is named by one of its weights.
func calibrationStage(name string) string {
	if name == model.AdapterDenseHTo4HName {
		return model.AdapterGateProjName
	}
	l, ok := model.LayerOf(name, model.DecoderLayerPrefix)
	if !ok {
		return name
	}
	n := model.LayerTensorNames(l)
	for _, e := range []model.ExpertNames{n.Vision, n.Language} {
		switch name {
		case e.QueryKeyValue:
			return n.Language.QueryKeyValue
		case e.Dense:
			return n.Language.Dense
		case e.GateProj, e.UpProj:
			return n.Language.GateProj
		case e.DownProj:
			return n.Language.DownProj
		}
	}
	return name
}

// gptqOptions are the settings of gptqQuantize.
type gptqOptions struct {
	damp       float64
	sequential bool // each stage calibrated on the model with the earlier stages quantized
}

// gptqQuantize quantizes the q4 tensors (in manifest order, a topological order of the
// forward pass) of the float32 model m with GPTQ on the activations of cases; ctx is
// checked between stages. With
// sequential, the stages (calibrationStage) are done in order, each on the inputs of the
// model whose earlier stages are already quantized: m's weights are overwritten with the
// dequantized ones as it goes. Otherwise one pass of the float32 model gives every
// tensor's inputs, and m is left as it was.
func gptqQuantize(ctx context.Context, m *model.Model, tensors []format.TensorEntry, cases []calibrationCase, opts gptqOptions) (map[string]q4Tensor, error) {
	var stages [][]*format.TensorEntry
	index := map[string]int{}
	for i := range tensors {
		t := &tensors[i]
		if t.Encoding != quant.Q4 {
			continue
		}
		key := calibrationStage(t.Name)
		if !opts.sequential {
			key = ""
		}
		s, ok := index[key]
		if !ok {
			s = len(stages)
			index[key] = s
			stages = append(stages, nil)
		}
		stages[s] = append(stages[s], t)
	}
	out := map[string]q4Tensor{}
	defer func() { m.ObserveLinear = nil }()
	// The images' rows (per case) for the stages that do not touch the vision tower or
	// adapter: those weights are final by then, so each image is encoded once, not once
	// per decoder stage.
	var imageRows [][]float32
	for _, stage := range stages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hessians := map[string]*gptq.Hessian{}
		for _, t := range stage {
			hessians[t.Name] = gptq.NewHessian(t.Shape[1])
		}
		m.ObserveLinear = func(weight string, x []float32, rows, k int) {
			if h := hessians[weight]; h != nil {
				h.Add(x, rows)
			}
		}
		imageOnly, touchesImage := true, false // the vision tower and adapter: the decoder need not run
		for _, t := range stage {
			image := strings.HasPrefix(t.Name, model.VisionPrefix)
			imageOnly, touchesImage = imageOnly && image, touchesImage || image
		}
		if touchesImage {
			imageRows = nil // this stage observes the encoding and then changes it
		} else if imageRows == nil {
			imageRows = make([][]float32, len(cases))
		}
		if err := runCalibration(m, cases, imageOnly, imageRows); err != nil {
			return nil, err
		}
		for _, t := range stage {
			h := hessians[t.Name]
			if h.Rows == 0 {
				return nil, fmt.Errorf("tensor %q: no calibration prompt runs it", t.Name)
			}
			w, ok := m.Tensor(t.Name)
			if !ok {
				return nil, fmt.Errorf("tensor %q: not in the model", t.Name)
			}
			n, k, g := t.Shape[0], t.Shape[1], t.GroupSize
			q := q4Tensor{make([]uint32, n*k/8), make([]uint16, n*k/g)}
			if err := gptq.QuantizeQ4Into(q.qweight, q.scales, w, n, k, g, h.H, opts.damp); err != nil {
				return nil, fmt.Errorf("tensor %q: %v", t.Name, err)
			}
			out[t.Name] = q
			if opts.sequential {
				quant.DequantizeQ4Into(w, q.qweight, q.scales, n, k, g)
			}
		}
	}
	return out, nil
}

// runCalibration runs every case's prompt (and image) through m, prefill only; with
// imageOnly, only the images. A non-nil memo (one slot per case) keeps each image's rows
// from its first encoding and reuses them.
func runCalibration(m *model.Model, cases []calibrationCase, imageOnly bool, memo [][]float32) error {
	for i, c := range cases {
		var rows []float32
		if memo != nil {
			rows = memo[i]
		}
		if c.pixels != nil && rows == nil {
			var err error
			if rows, err = m.EncodeImage(c.pixels); err != nil {
				return fmt.Errorf("calibration image %d: %v", i, err)
			}
			if memo != nil {
				memo[i] = rows
			}
		}
		if imageOnly {
			continue
		}
		if _, _, err := m.Prefill(c.inputs, rows, 0); err != nil {
			return fmt.Errorf("calibration prompt %d: %v", i, err)
		}
	}
	return nil
}
