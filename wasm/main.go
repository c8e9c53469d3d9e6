//go:build js && wasm

// Command wasm is the cogvlm-web engine compiled to WebAssembly (web/cogvlm.wasm).
//
// # The engine object
//
// The Go program hands its host (web/worker.js) one object, the engine, and sets no
// global of its own: the host defines globalThis.cogvlmEngineReady(engine) before it runs
// the program; main calls it once and deletes the name. Every method returns a Promise;
// the methods are the table in exports.methods, and this comment is their one description.
//
//	load({name, manifest, readFile, precision?, replay?, onProgress?}) → summary
//	    name: the package's manifest URL (or a folder's stand-in), for messages.
//	    manifest: manifest.json's text, read and checked by the host (web/loader.js).
//	    readFile(file) → Promise<ArrayBuffer>: the bytes of a file the manifest lists,
//	        already verified by the host (size and SHA-256); the engine asks for the
//	        tokenizer first, then the shards in manifest order, each once. It asks nothing
//	        before its device exists and the memory plan fits the device's limits.
//	    precision: "auto" (default; the f16 kernels where the adapter has shader-f16) or
//	        "f32". onProgress(uploadedBytes, totalBytes) as shards reach the GPU.
//	    replay: web/cogvlm-replay.js's module ({run(device, plan, readback)}), the kernels'
//	        JS half: with it a decode step is one Go→JS call; without it the engine
//	        encodes each dispatch from Go (slower, same answers).
//	    summary: {maxPositions, vocabSize, imageSize, maxImageSide, template, defaults,
//	        memory, memoryBytes, adapter: {vendor, architecture, fallback, shaderF16,
//	        subgroups, timestampQuery, maxBufferSize, maxStorageBufferBindingSize},
//	        precision}. defaults is model.DefaultSampling in generate's option names: the
//	        one source of the defaults the page shows. maxImageSide is the largest width
//	        or height generate's imageBytes may have (see image-too-large below).
//	    A second load replaces the model (the first is disposed).
//	generate({query, imageBytes?, history?, template?, maxNewTokens?, temperature?,
//	          topP?, topK?, repetitionPenalty?, seed?, onToken?})
//	        → {tokenIds, text, inputIds, stopReason, image, stats: {visionMs, prefillMs,
//	           prefillTokens, reusedTokens, firstTokenMs, decodeMs, decodeTokens}}
//	    query: a non-empty string. history: [[question, answer], …] of strings.
//	    imageBytes: a Uint8Array of an image file (PNG, JPEG, GIF, WebP), decoded in Go as
//	        the CPU reference decodes it, once per question (none for a follow-up about
//	        the same image); the vision tower runs once per image and is reused for
//	        follow-ups, as is the conversation's KV cache (the prompt's longest common
//	        prefix of ids with it: stats.reusedTokens). Its size is read from the file's
//	        header first: a file wider or higher than maxImageSide pixels, or of more than
//	        64 MiB, is refused with the code image-too-large before any pixel is decoded
//	        (the host downscales it and asks again; the code is the host's, never the
//	        page's). image is then {width, height}, the decoded size (null without one).
//	    An option left out takes model.DefaultSampling's value (greedy, at most 256 new
//	    tokens and never past the context); a template left out model.DefaultTemplate's
//	    (vicuna without an image, the model's template_version with one).
//	    onToken(id, text) for each token. One generate runs at a time: this is the one
//	    place that refuses a second.
//	abort()       stops a running generate at the next token (it rejects with aborted).
//	resetCache()  forgets the conversation's KV cache (a new chat), before the next generate.
//	dispose()     frees the GPU memory and the device.
//	goVersion     the Go release that built the program (a string property).
//
// Failures reject with an Error whose `code` is one of DESIGN.md's: no-webgpu, limits,
// out-of-memory, device-lost, integrity, network, bad-input, context-length, aborted
// (and internal for a bug: a Go panic, caught by wasm/bridge), or generate's
// image-too-large, which the host handles.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"math"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/format"
	"github.com/cogvlm-web/cogvlm-web/model/imageproc"
	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
	"github.com/cogvlm-web/cogvlm-web/wasm/bridge"
	"github.com/cogvlm-web/cogvlm-web/wasm/engine"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

// readyHook is the host's function that receives the engine object.
const readyHook = "cogvlmEngineReady"

func main() {
	e := &exports{}
	obj, err := safejs.ValueOf(map[string]any{"goVersion": runtime.Version()})
	if err != nil {
		panic(err)
	}
	for name, fn := range e.methods() {
		if err := bridge.Export(obj, name, fn); err != nil {
			panic(fmt.Sprintf("export %s: %v", name, err))
		}
	}
	global := safejs.Global()
	ready, err := global.Get(readyHook)
	if err != nil || ready.Type() != safejs.TypeFunction {
		panic("cogvlm.wasm: the host has not defined globalThis." + readyHook + "(engine) (see web/worker.js)")
	}
	if err := global.Delete(readyHook); err != nil {
		panic(err)
	}
	if _, err := ready.Invoke(obj); err != nil {
		panic(err)
	}
	select {}
}

// methods is the engine object's one dispatch table (documented above).
func (e *exports) methods() map[string]bridge.Func {
	return map[string]bridge.Func{
		"load":       e.load,
		"generate":   e.generate,
		"abort":      func([]safejs.Value) (any, error) { e.aborted.Store(true); return nil, nil },
		"resetCache": func([]safejs.Value) (any, error) { e.resetCache.Store(true); return nil, nil },
		"dispose":    e.dispose,
	}
}

// The images generate decodes: at most maxImageSide pixels wide and high, in a file of at
// most maxImageBytes. A larger one is refused from its header with the code
// image-too-large, and the host downscales it: the model sees 490×490 anyway, and a
// 50-megapixel photo decoded in WASM would take 150 MB of a heap that never shrinks.
const (
	maxImageSide  = 2048
	maxImageBytes = 64 << 20
)

// imageTooLarge is the refusal the host answers by downscaling (web/image.js).
func imageTooLarge(format string, args ...any) error {
	return &bridge.CodedError{Code: "image-too-large", Err: fmt.Errorf(format, args...)}
}

type exports struct {
	// dev is the device of the loaded model, owned here: load hands it over only with a
	// session, dispose destroys it.
	dev     *gpu.Device
	session *engine.Session
	aborted atomic.Bool
	busy    atomic.Bool
	// resetCache asks the next generate to start from an empty KV cache: a request can
	// arrive while an answer runs, and only generate touches the session.
	resetCache atomic.Bool
}

// coded maps engine errors to the JS API's error codes.
func coded(err error) error {
	if err == nil {
		return nil
	}
	code := ""
	switch {
	case errors.Is(err, gpu.ErrNoWebGPU):
		code = "no-webgpu"
	case errors.Is(err, gpu.ErrDeviceLost):
		code = "device-lost"
	case errors.Is(err, gpu.ErrOutOfMemory):
		code = "out-of-memory"
	case errors.Is(err, gpu.ErrLimit):
		code = "limits"
	case errors.Is(err, engine.ErrIntegrity):
		code = "integrity"
	case errors.Is(err, engine.ErrContextLength):
		code = "context-length"
	case errors.Is(err, engine.ErrBadImage), errors.Is(err, engine.ErrBadRequest):
		code = "bad-input"
	default:
		return err
	}
	return &bridge.CodedError{Code: code, Err: err}
}

func badInput(err error) error { return &bridge.CodedError{Code: "bad-input", Err: err} }

func adapterInfo(d *gpu.Device) map[string]any {
	return map[string]any{
		"vendor":                      d.Info.Vendor,
		"architecture":                d.Info.Architecture,
		"fallback":                    d.Info.Fallback,
		"shaderF16":                   d.Has(gpu.FeatureShaderF16),
		"subgroups":                   d.Has(gpu.FeatureSubgroups),
		"timestampQuery":              d.Has(gpu.FeatureTimestampQuery),
		"maxBufferSize":               float64(d.Limits.MaxBufferSize),
		"maxStorageBufferBindingSize": float64(d.Limits.MaxStorageBufferBindingSize),
	}
}

func (e *exports) load(args []safejs.Value) (any, error) {
	if len(args) == 0 || args[0].Type() != safejs.TypeObject {
		return nil, badInput(errors.New("load: want an options object {name, manifest, readFile}"))
	}
	o := args[0]
	name, manifest := stringField(o, "name"), stringField(o, "manifest")
	readFile, _ := o.Get("readFile")
	switch {
	case name == "":
		return nil, badInput(errors.New("load: name is missing"))
	case manifest == "":
		return nil, badInput(errors.New("load: manifest (manifest.json's text) is missing"))
	case readFile.Type() != safejs.TypeFunction:
		return nil, badInput(errors.New("load: readFile(file) → Promise<ArrayBuffer> is missing"))
	}
	// precision "auto" (or none), "f16" or "f32": engine.Precision.UseF16 decides the path
	// from it and the adapter.
	precision, err := engine.ParsePrecision(stringField(o, "precision"))
	if err != nil {
		return nil, badInput(fmt.Errorf("load: %v", err))
	}
	if _, err := e.dispose(nil); err != nil {
		return nil, err
	}
	read := func(file string) (safejs.Value, error) {
		p, err := readFile.Invoke(file)
		if err != nil {
			return safejs.Undefined(), err
		}
		return gpu.Await(p)
	}
	opts := engine.LoadOptions{
		Manifest: manifest,
		Shards:   func(f format.FileEntry) (safejs.Value, error) { return read(f.File) }, // verified by the host
	}
	if onProgress, err := o.Get("onProgress"); err == nil && onProgress.Type() == safejs.TypeFunction {
		opts.Progress = func(done, total int64) { onProgress.Invoke(float64(done), float64(total)) }
	}

	d, err := gpu.RequestDevice(gpu.Options{})
	if err != nil {
		return nil, coded(err)
	}
	// The device is this call's until a session holds it: every failure below frees it here.
	defer func() {
		if e.dev != d {
			d.Destroy()
		}
	}()
	// The memory plan, from the manifest alone: printed, and checked against the device's
	// limits before the host is asked for a file. Then the tokenizer, before any shard.
	var plan engine.MemoryPlan
	var tok *tokenizer.Tokenizer
	opts.Before = func(m *format.Manifest, cfg model.Config) error {
		seq, prefill := engine.SessionSizes(cfg, 0)
		plan = engine.PlanMemory(cfg, m, seq, prefill, kernels.KVF16)
		if console, err := safejs.Global().Get("console"); err == nil {
			console.Call("info", "cogvlm: model "+plan.String())
		}
		if err := plan.Check(d.Limits); err != nil {
			return err
		}
		ab, err := read(m.Tokenizer.File)
		if err != nil {
			return err
		}
		b, err := arrayBufferBytes(ab, m.Tokenizer.Size)
		if err == nil {
			tok, err = tokenizer.ParseJSON(b)
		}
		if err != nil {
			return badInput(fmt.Errorf("%s: %s: %v", name, m.Tokenizer.File, err))
		}
		return nil
	}
	k := kernels.NewKernels(d)
	if r, err := o.Get("replay"); err == nil {
		if err := k.SetReplayer(r); err != nil {
			return nil, badInput(fmt.Errorf("load: %v", err))
		}
	}
	useF16, err := precision.UseF16(d.Info, d.Has(gpu.FeatureShaderF16))
	if err != nil {
		return nil, badInput(fmt.Errorf("load: %v", err))
	}
	k.NoF16 = !useF16
	p, err := engine.LoadPackage(k, name, opts)
	if err != nil {
		return nil, coded(err)
	}
	s, err := engine.NewSession(k, p, tok, 0, kernels.KVF16)
	if err != nil {
		p.Release()
		return nil, coded(err)
	}
	e.dev, e.session = d, s
	return map[string]any{
		"maxPositions": s.Cfg.MaxPositionEmbeddings,
		"vocabSize":    s.Cfg.VocabSize,
		"imageSize":    s.Cfg.Vision.ImageSize,
		"maxImageSide": maxImageSide,
		"template":     s.Cfg.TemplateVersion,
		"defaults":     samplingDefaults(),
		"memory":       plan.String(),
		"memoryBytes":  float64(plan.Total()),
		"adapter":      adapterInfo(d),
		"precision":    map[bool]string{true: "f16", false: "f32"}[k.UsesF16()],
	}, nil
}

func (e *exports) generate(args []safejs.Value) (any, error) {
	if e.session == nil {
		return nil, badInput(errors.New("generate: no model is loaded"))
	}
	if len(args) == 0 || args[0].Type() != safejs.TypeObject {
		return nil, badInput(errors.New("generate: want an options object"))
	}
	if !e.busy.CompareAndSwap(false, true) {
		return nil, badInput(errors.New("generate: another answer is still being generated; wait for it or abort it"))
	}
	defer e.busy.Store(false)
	e.aborted.Store(false)
	req, size, err := request(args[0], e.session.Cfg)
	if _, coded := err.(*bridge.CodedError); err != nil && !coded {
		return nil, badInput(err)
	} else if err != nil {
		return nil, err
	}
	onToken, _ := args[0].Get("onToken")
	if e.resetCache.Swap(false) {
		e.session.ResetCache()
	}
	res, err := e.session.Generate(req, func(id int, text string) bool {
		if onToken.Type() == safejs.TypeFunction {
			onToken.Invoke(id, text)
		}
		return !e.aborted.Load()
	})
	if err != nil {
		return nil, coded(err)
	}
	if res.StopReason == model.StopCallback && e.aborted.Load() {
		return nil, &bridge.CodedError{Code: "aborted", Err: errors.New("generation aborted")}
	}
	ids := make([]any, len(res.TokenIDs))
	for i, id := range res.TokenIDs {
		ids[i] = id
	}
	in := make([]any, len(res.InputIDs))
	for i, id := range res.InputIDs {
		in[i] = id
	}
	var decoded any // null without an image
	if req.Image != nil {
		decoded = map[string]any{"width": size.X, "height": size.Y}
	}
	return map[string]any{
		"tokenIds":   ids,
		"text":       res.Text,
		"inputIds":   in,
		"stopReason": string(res.StopReason),
		"image":      decoded,
		"stats": map[string]any{
			"visionMs":      float64(res.Stats.Vision.Microseconds()) / 1000,
			"prefillMs":     float64(res.Stats.Prefill.Microseconds()) / 1000,
			"prefillTokens": res.Stats.PrefillTokens,
			"reusedTokens":  res.Stats.ReusedTokens,
			"firstTokenMs":  float64(res.Stats.FirstToken.Microseconds()) / 1000,
			"decodeMs":      float64(res.Stats.Decode.Microseconds()) / 1000,
			"decodeTokens":  res.Stats.DecodeTokens,
		},
	}, nil
}

// request reads generate's options (the one place that knows their names and checks
// their shapes); an option left out takes model.DefaultSampling's value. size is the
// image's, read from its header.
func request(o safejs.Value, cfg model.Config) (req engine.Request, size image.Point, err error) {
	def := model.DefaultSampling() // greedy, as upstream
	req = engine.Request{
		Query:    stringField(o, "query"),
		Template: stringField(o, "template"),
		// left out, maxNewTokens stops at the context's end (as the CLI's default)
		CapNewTokens: !isNumber(o, "maxNewTokens"),
		Sampling: model.Sampling{
			MaxNewTokens:      intField(o, "maxNewTokens", def.MaxNewTokens),
			Temperature:       floatField(o, "temperature", def.Temperature),
			TopP:              floatField(o, "topP", def.TopP),
			TopK:              intField(o, "topK", def.TopK),
			RepetitionPenalty: floatField(o, "repetitionPenalty", def.RepetitionPenalty),
			Seed:              uint64(intField(o, "seed", int(def.Seed))),
		},
	}
	if strings.TrimSpace(req.Query) == "" {
		return req, size, errors.New("generate: query must be a non-empty string")
	}
	history, err := historyField(o)
	if err != nil {
		return req, size, err
	}
	req.History = history
	if img, err := o.Get("imageBytes"); err == nil && !img.IsNull() && !img.IsUndefined() {
		n, err := img.Length()
		if err != nil || n == 0 {
			return req, size, errors.New("generate: imageBytes must be a non-empty Uint8Array of an image file")
		}
		if n > maxImageBytes {
			return req, size, imageTooLarge("generate: the image file has %d bytes, more than the %d this engine decodes (downscale it)", n, maxImageBytes)
		}
		req.Image = make([]byte, n)
		if _, err := safejs.CopyBytesToGo(req.Image, img); err != nil {
			return req, size, fmt.Errorf("generate: imageBytes: %v", err)
		}
		// The header only: the session decodes the pixels, once.
		if size.X, size.Y, err = imageproc.Size(bytes.NewReader(req.Image)); err != nil {
			return req, size, err
		}
		if size.X > maxImageSide || size.Y > maxImageSide {
			return req, size, imageTooLarge("generate: the image is %d×%d pixels, more than the %d per side this engine decodes (downscale it)", size.X, size.Y, maxImageSide)
		}
	}
	if req.Template == "" { // vicuna for a text-only question, the model's own with an image
		req.Template = model.DefaultTemplate(cfg, req.Image != nil)
	}
	return req, size, nil
}

// historyField reads history: absent, or an array of [question, answer] string pairs.
func historyField(o safejs.Value) ([][2]string, error) {
	h, err := o.Get("history")
	if err != nil || h.IsUndefined() || h.IsNull() {
		return nil, nil
	}
	isArray := func(v safejs.Value) bool {
		ctor, err := safejs.Global().Get("Array")
		if err != nil {
			return false
		}
		ok, err := ctor.Call("isArray", v)
		if err != nil {
			return false
		}
		b, _ := ok.Bool()
		return b
	}
	if !isArray(h) {
		return nil, errors.New("generate: history must be an array of [question, answer] pairs")
	}
	n, err := h.Length()
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for i := 0; i < n; i++ {
		turn, _ := h.Index(i)
		var pair [2]string
		ok := isArray(turn)
		if ok {
			m, _ := turn.Length()
			ok = m == 2
		}
		for j := 0; ok && j < 2; j++ {
			v, _ := turn.Index(j)
			if ok = v.Type() == safejs.TypeString; ok {
				pair[j], _ = v.String()
			}
		}
		if !ok {
			return nil, fmt.Errorf("generate: history[%d] is not a [question, answer] pair of strings", i)
		}
		out = append(out, pair)
	}
	return out, nil
}

func (e *exports) dispose([]safejs.Value) (any, error) {
	if e.session != nil {
		e.session.Pkg.Release()
		e.session = nil
	}
	if e.dev != nil {
		e.dev.Destroy()
		e.dev = nil
	}
	return nil, nil
}

// samplingDefaults is model.DefaultSampling in generate's option names: what an option
// left out means, for the page's "Model defaults".
func samplingDefaults() map[string]any {
	d := model.DefaultSampling()
	return map[string]any{
		"maxNewTokens":      d.MaxNewTokens,
		"temperature":       d.Temperature,
		"topP":              d.TopP,
		"topK":              d.TopK,
		"repetitionPenalty": d.RepetitionPenalty,
		"seed":              float64(d.Seed),
	}
}

func stringField(o safejs.Value, name string) string {
	v, err := o.Get(name)
	if err != nil || v.Type() != safejs.TypeString {
		return ""
	}
	s, _ := v.String()
	return s
}

func floatField(o safejs.Value, name string, def float64) float64 {
	v, err := o.Get(name)
	if err != nil || v.Type() != safejs.TypeNumber {
		return def
	}
	f, _ := v.Float()
	return f
}

// isNumber reports whether the option is given: a number and not NaN (what intField
// reads as given).
func isNumber(o safejs.Value, name string) bool {
	f := floatField(o, name, math.NaN())
	return f == f
}

// intField reads an integer option. A number past int's range saturates (Go's conversion
// of such a float is undefined), so that the engine's checks name it as too large or
// negative; NaN counts as absent.
func intField(o safejs.Value, name string, def int) int {
	switch f := floatField(o, name, float64(def)); {
	case f != f:
		return def
	case f >= math.MaxInt:
		return math.MaxInt
	case f <= math.MinInt:
		return math.MinInt
	default:
		return int(f)
	}
}

// arrayBufferBytes copies an ArrayBuffer of want bytes (a tokenizer.json of about 2 MB)
// into Go.
func arrayBufferBytes(ab safejs.Value, want int64) ([]byte, error) {
	u8, err := safejs.Global().Get("Uint8Array")
	if err != nil {
		return nil, err
	}
	v, err := u8.New(ab)
	if err != nil {
		return nil, fmt.Errorf("not an ArrayBuffer: %v", err)
	}
	n, err := v.Length()
	if err != nil {
		return nil, err
	}
	if int64(n) != want {
		return nil, fmt.Errorf("%d bytes, the manifest says %d", n, want)
	}
	b := make([]byte, n)
	_, err = safejs.CopyBytesToGo(b, v)
	return b, err
}
