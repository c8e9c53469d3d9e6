//go:build js && wasm

// Command wasm is the cogvlm-web engine compiled to WebAssembly (web/cogvlm.wasm). It
// registers `globalThis.cogvlmEngine`, whose functions return promises:
//
//	probe()                 → adapter, features and limits
//	load({manifestURL, manifest?, tokenizer?, getShard?, onProgress?})
//	                        → the model's summary. Fetches, verifies and uploads the package;
//	                          a caller that has already read and verified the files (the
//	                          worker's cache, a folder on disk) passes manifest.json's text,
//	                          tokenizer.json's bytes (ArrayBuffer) and getShard(file) →
//	                          Promise<ArrayBuffer> instead; onProgress(uploaded, total)
//	generate({imageBytes?, query, history, template, maxNewTokens, temperature, topP,
//	          topK, repetitionPenalty, seed, onToken(id, text)})
//	                        an option left out takes model.DefaultSampling's value
//	                        (greedy; load's summary lists them as `defaults`), a
//	                        template left out model.DefaultTemplate's (vicuna without
//	                        an image, the model's template_version with one)
//	                        imageBytes: Uint8Array of an image file (PNG, JPEG, GIF, WebP),
//	                        decoded in Go exactly as the CPU reference does; the vision
//	                        tower runs once per image and is reused for follow-ups, and
//	                        so is the conversation's KV cache (the prompt's longest
//	                        common prefix of ids with it: stats.reusedTokens)
//	                        → {tokenIds, text, inputIds, stopReason, stats}
//	resetCache()            forgets the conversation's KV cache (a new chat), before the
//	                        next generate
//	abort()                 → stops a running generate at the next token
//	dispose()               → frees the GPU memory
//
// Failures reject with an Error whose `code` is one of DESIGN.md's: no-webgpu, limits,
// out-of-memory, device-lost, integrity, network, bad-input, context-length, aborted.
// Then it waits for calls forever.
package main

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/pkg"
	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
	"github.com/cogvlm-web/cogvlm-web/wasm/bridge"
	"github.com/cogvlm-web/cogvlm-web/wasm/engine"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

func main() {
	e := &exports{}
	obj, err := safejs.ValueOf(map[string]any{"goVersion": runtime.Version()})
	if err != nil {
		panic(err)
	}
	bridge.Export(obj, "probe", probe)
	bridge.Export(obj, "load", e.load)
	bridge.Export(obj, "generate", e.generate)
	bridge.Export(obj, "abort", func([]safejs.Value) (any, error) { e.aborted.Store(true); return nil, nil })
	bridge.Export(obj, "resetCache", func([]safejs.Value) (any, error) { e.resetCache.Store(true); return nil, nil })
	bridge.Export(obj, "dispose", e.dispose)
	safejs.Global().Set("cogvlmEngine", obj)
	if ready, err := safejs.Global().Get("cogvlmEngineReady"); err == nil && ready.Type() == safejs.TypeFunction {
		ready.Invoke(obj)
	}
	select {}
}

// maxImageBytes bounds an image file handed to the engine: the page downscales large
// photos before sending, and WASM memory is small.
const maxImageBytes = 64 << 20

type exports struct {
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
	case errors.Is(err, engine.ErrNetwork):
		code = "network"
	default:
		return err
	}
	return &bridge.CodedError{Code: code, Err: err}
}

func badInput(err error) error { return &bridge.CodedError{Code: "bad-input", Err: err} }

// probe requests a device and reports the adapter, its features and limits: what the page
// shows before any download, and what the loader plans against.
func probe([]safejs.Value) (any, error) {
	d, err := gpu.RequestDevice(gpu.Options{})
	if err != nil {
		return nil, coded(err)
	}
	defer d.Destroy()
	return adapterInfo(d), nil
}

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
		return nil, badInput(errors.New("load: want an options object {manifestURL}"))
	}
	url := stringField(args[0], "manifestURL")
	if url == "" {
		return nil, badInput(errors.New("load: manifestURL is missing"))
	}
	if _, err := e.dispose(nil); err != nil {
		return nil, err
	}
	opts := engine.LoadOptions{Manifest: stringField(args[0], "manifest")}
	if getShard, err := args[0].Get("getShard"); err == nil && getShard.Type() == safejs.TypeFunction {
		// getShard(file) → Promise<ArrayBuffer> of bytes the caller has verified
		opts.Verified = true
		opts.Shards = func(f pkg.FileEntry) (safejs.Value, error) {
			p, err := getShard.Invoke(f.File)
			if err != nil {
				return safejs.Undefined(), err
			}
			return gpu.Await(p)
		}
	}
	if onProgress, err := args[0].Get("onProgress"); err == nil && onProgress.Type() == safejs.TypeFunction {
		opts.Progress = func(done, total int64) { onProgress.Invoke(float64(done), float64(total)) }
	}
	// precision "auto" (or none), "f16" or "f32": engine.Precision.UseF16 decides the path
	// from it and the adapter.
	precision, err := engine.ParsePrecision(stringField(args[0], "precision"))
	if err != nil {
		return nil, badInput(fmt.Errorf("load: %v", err))
	}
	d, err := gpu.RequestDevice(gpu.Options{})
	if err != nil {
		return nil, coded(err)
	}
	// The memory plan, from the manifest alone: printed, and checked against the
	// adapter's limits before a byte of weights is downloaded.
	var plan engine.MemoryPlan
	opts.Before = func(m *pkg.Manifest, cfg model.Config) error {
		seq, prefill := engine.SessionSizes(cfg, 0)
		plan = engine.PlanMemory(cfg, m, seq, prefill, engine.KVF16)
		if console, err := safejs.Global().Get("console"); err == nil {
			console.Call("info", "cogvlm: model "+plan.String())
		}
		return plan.Check(d.Limits)
	}
	k := engine.NewKernels(d)
	useF16, err := precision.UseF16(d.Info, d.Has(gpu.FeatureShaderF16))
	if err != nil {
		d.Destroy()
		return nil, badInput(fmt.Errorf("load: %v", err))
	}
	k.NoF16 = !useF16
	p, err := engine.LoadPackageWith(k, url, opts)
	if err != nil {
		d.Destroy()
		return nil, coded(err)
	}
	tokJSON, err := bytesField(args[0], "tokenizer")
	if err != nil {
		d.Destroy()
		return nil, badInput(fmt.Errorf("load: tokenizer: %v", err))
	}
	if tokJSON == nil {
		text, err := engine.FetchText(p.BaseURL + p.Manifest.Tokenizer.File)
		if err != nil {
			d.Destroy()
			return nil, coded(err)
		}
		tokJSON = []byte(text)
	}
	tok, err := tokenizer.ParseJSON(tokJSON)
	if err != nil {
		d.Destroy()
		return nil, coded(err)
	}
	s, err := engine.NewSession(k, p, tok, 0, engine.KVF16)
	if err != nil {
		d.Destroy()
		return nil, coded(err)
	}
	e.dev, e.session = d, s
	return map[string]any{
		"maxPositions": s.Cfg.MaxPositionEmbeddings,
		"vocabSize":    s.Cfg.VocabSize,
		"imageSize":    s.Cfg.Vision.ImageSize,
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
		return nil, badInput(errors.New("generate: a generation is already running"))
	}
	defer e.busy.Store(false)
	e.aborted.Store(false)
	o := args[0]
	def := model.DefaultSampling() // greedy, as upstream
	req := engine.Request{
		Query:    stringField(o, "query"),
		Template: stringField(o, "template"),
		Sampling: model.Sampling{
			MaxNewTokens:      intField(o, "maxNewTokens", def.MaxNewTokens),
			Temperature:       floatField(o, "temperature", def.Temperature),
			TopP:              floatField(o, "topP", def.TopP),
			TopK:              intField(o, "topK", def.TopK),
			RepetitionPenalty: floatField(o, "repetitionPenalty", def.RepetitionPenalty),
			Seed:              uint64(intField(o, "seed", int(def.Seed))),
		},
	}
	if h, err := o.Get("history"); err == nil && h.Type() == safejs.TypeObject {
		n, _ := h.Length()
		for i := 0; i < n; i++ {
			turn, _ := h.Index(i)
			q, _ := turn.Index(0)
			a, _ := turn.Index(1)
			qs, _ := q.String()
			as, _ := a.String()
			req.History = append(req.History, [2]string{qs, as})
		}
	}
	if img, err := o.Get("imageBytes"); err == nil && !img.IsNull() && !img.IsUndefined() {
		n, err := img.Length()
		if err != nil || n == 0 {
			return nil, badInput(errors.New("generate: imageBytes must be a non-empty Uint8Array of an image file"))
		}
		if n > maxImageBytes {
			return nil, badInput(fmt.Errorf("generate: the image file has %d bytes, more than the %d this engine accepts (downscale it first)", n, maxImageBytes))
		}
		req.Image = make([]byte, n)
		if _, err := safejs.CopyBytesToGo(req.Image, img); err != nil {
			return nil, badInput(fmt.Errorf("generate: imageBytes: %v", err))
		}
	}
	if req.Template == "" { // vicuna for a text-only question, the model's own with an image
		req.Template = model.DefaultTemplate(e.session.Cfg, req.Image != nil)
	}
	onToken, _ := o.Get("onToken")
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
		if errors.Is(err, engine.ErrBadImage) || errors.Is(err, engine.ErrBadRequest) {
			return nil, badInput(err)
		}
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
	return map[string]any{
		"tokenIds":   ids,
		"text":       res.Text,
		"inputIds":   in,
		"stopReason": string(res.StopReason),
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

// bytesField copies an ArrayBuffer, TypedArray or string field into Go (a tokenizer.json
// of about 2 MB); nil when the field is absent.
func bytesField(o safejs.Value, name string) ([]byte, error) {
	v, err := o.Get(name)
	if err != nil || v.IsUndefined() || v.IsNull() {
		return nil, nil
	}
	if v.Type() == safejs.TypeString {
		s, err := v.String()
		return []byte(s), err
	}
	u8, err := safejs.Global().Get("Uint8Array")
	if err != nil {
		return nil, err
	}
	if buf, err := v.Get("buffer"); err == nil && buf.Type() == safejs.TypeObject { // a TypedArray
		off, _ := v.Get("byteOffset")
		n, _ := v.Get("byteLength")
		if v, err = u8.New(buf, off, n); err != nil {
			return nil, err
		}
	} else if v, err = u8.New(v); err != nil {
		return nil, err
	}
	n, err := v.Length()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	_, err = safejs.CopyBytesToGo(b, v)
	return b, err
}
