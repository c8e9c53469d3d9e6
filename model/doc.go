// Package model is CogVLM's float32 CPU reference: the config, the weight structs and
// their strict loader (weight matrices held as their source stores them: float32 from a
// checkpoint, a package's q4/q8/f16 packed and memory-mapped, see Matrix), the op list (ops.go) that every WebGPU kernel is checked against,
// the forward pass one block per file (vision.go: EVA2-CLIP tower, adapter.go: GLU
// adapter with boi/eoi, decoder.go: the language model with its vision and language
// experts and a KV cache), prompt building, sampling and the generation loop (loop.go:
// RunGeneration, which the GPU engine drives with its own forward). CogVLM's Hugging
// Face tensor names are written once, in names.go. Numbers and semantics follow
// testdata/golden/README.md; the golden tests hold the package to them.
//
// Typical use (the CLI):
//
//	cfg, err := model.LoadConfig(dir + "/config.json")
//	ckpt, err := safetensors.OpenCheckpoint(dir) // any TensorSource
//	m, err := model.Load(cfg, ckpt)              // reads every tensor once; ckpt can be closed after
//	                                             // (pkg.OpenModel does both for a package or a checkpoint)
//	template := model.DefaultTemplate(cfg, pixels != nil)          // vicuna for text, template_version with an image
//	in, err := model.PromptInputs(tok, template, query, history, pixels != nil, cfg)
//	res, err := m.Generate(in, pixels, model.DefaultSampling(), func(id int) bool {
//		fmt.Print(tok.Decode([]int{id}))
//		return true // false stops generation
//	})
//	// res.GeneratedIDs, res.StopReason, res.Stats; for --dump: res.VisionOut,
//	// res.PrefillLogitsLast, res.PrefillHiddenLast, res.StepLogits (Sampling.KeepStepLogits)
//
// pixels are pixel_values as CHW float32 [C, S, S] (model/imageproc), or nil for a
// text-only prompt. Temperature 0 is greedy (DefaultSampling, as upstream).
//
// Lower-level entry points, for the GPU engine's checks and for tests:
// EncodeImage (pixels → the image tokens' rows), Prefill (a prompt → last logits and
// hidden state, filling the KV cache), Decode (one more token → logits), Sampler (one
// sampling step), TensorSpecs (every tensor name and shape a config implies),
// PositionIDs and VisionExpertMask (CogVLM's rules from token types).
//
// A Model runs one sequence at a time and is not safe for concurrent use.
package model
