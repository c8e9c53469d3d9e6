//go:build js && wasm

package engine

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/imageproc"
	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

// Session is a loaded model ready to answer: the package on the GPU, its tokenizer, and
// a decoder whose buffers are allocated once. It runs one generation at a time.
type Session struct {
	K   *kernels.Kernels
	Pkg *Package
	Tok *tokenizer.Tokenizer
	Cfg model.Config
	dec *Decoder

	vision     *Vision  // made at the first image
	imageHash  [32]byte // of the image whose rows are in vision.Out
	hasImage   bool
	visionRuns int // images encoded so far (follow-ups about the same image reuse its rows)

	// kv are the tokens whose keys and values dec's cache holds (dec.Length() of them),
	// with kv.Image the SHA-256 of their image file, and kvTemplate the template of their
	// prompt: a request reuses the longest common prefix with them.
	kv         model.KVTokens
	kvTemplate string
}

// ResetCache forgets the conversation in the KV cache: the next request prefills its
// whole prompt (a new chat).
func (s *Session) ResetCache() {
	s.kv.Reset()
	s.kvTemplate = ""
	s.dec.Reset()
}

// reusable is how many of in's tokens the KV cache holds for a request with this image
// key and template, at most all but the last (whose logits are the output): none for
// another image or template; otherwise the longest prefix of ids, token types, positions
// and experts that agrees (model.KVTokens.CommonPrefix).
func (s *Session) reusable(in model.Inputs, mask []bool, image model.ImageKey, template string) int {
	if template != s.kvTemplate || s.kv.Len() != s.dec.Length() {
		return 0
	}
	return min(s.kv.CommonPrefix(in, mask, image), len(in.InputIDs)-1)
}

// ErrBadRequest marks a request the engine refuses as given: an unknown template, sampling
// settings out of range.
var ErrBadRequest = errors.New("bad request")

// ErrContextLength marks a prompt plus new tokens beyond the context.
var ErrContextLength = errors.New("the context is full")

// SessionSizes are the sequence and prompt lengths a session allocates for: maxSeq
// tokens in all (0: the model's max_position_embeddings), prompts up to maxSeq − 1.
func SessionSizes(cfg model.Config, maxSeq int) (seq, prefill int) {
	if maxSeq <= 0 || maxSeq > cfg.MaxPositionEmbeddings {
		maxSeq = cfg.MaxPositionEmbeddings
	}
	return maxSeq, maxSeq - 1
}

// NewSession allocates the decoder for sequences up to maxSeq tokens (see SessionSizes)
// with a KV cache in kv (KVF16 in the app).
func NewSession(k *kernels.Kernels, p *Package, tok *tokenizer.Tokenizer, maxSeq int, kv kernels.KVPrecision) (*Session, error) {
	cfg := p.Config
	maxSeq, maxPrefill := SessionSizes(cfg, maxSeq)
	if err := PlanMemory(cfg, p.Manifest, maxSeq, maxPrefill, kv).Check(k.Dev.Limits); err != nil {
		return nil, err
	}
	dec, err := NewDecoder(k, p, maxSeq, maxPrefill, kv)
	if err != nil {
		return nil, err
	}
	return &Session{K: k, Pkg: p, Tok: tok, Cfg: cfg, dec: dec}, nil
}

// Request is one question.
type Request struct {
	// Image is an encoded image file (PNG, JPEG, GIF, WebP), decoded and preprocessed by
	// model/imageproc exactly as the CPU reference does; nil for a text-only question.
	Image    []byte
	Query    string
	History  [][2]string
	Template string // chat, vqa or base
	Sampling model.Sampling
	// CapNewTokens makes Sampling.MaxNewTokens a cap, not a demand (the default, when the
	// caller left it out): it shrinks to the session's context left after the prompt
	// (model.CapNewTokens), so the answer stops at the context's end instead of the
	// request being refused.
	CapNewTokens bool
}

// Result is a generation's output.
type Result struct {
	TokenIDs   []int
	Text       string
	InputIDs   []int
	StopReason model.StopReason
	Stats      model.Stats
}

// Generate answers req, calling onToken with each new token and the text it completes
// (possibly empty: a UTF-8 character can span tokens); onToken returning false stops.
// Greedy decoding and top-k/top-p sampling (SampleOnGPU) stay on the GPU (4 bytes read
// back per token); other settings read the logits back and use the CPU reference's
// sampler. Both draw from the CPU sampler's seeded generator, so a seed gives the same
// tokens either way.
//
// The conversation's keys and values stay in the KV cache between requests: a follow-up
// prefills only the prompt's tokens after its longest common prefix of ids with them
// (the previous prompt and the answer's ids as generated), with the same tokens as a
// fresh session. Another image (by content) or template reuses nothing, an edited
// history the prefix before the edit; a stopped answer keeps what it fed back; a refused
// request leaves the cache as it was, and a failure on the GPU empties it.
func (s *Session) Generate(req Request, onToken func(id int, text string) bool) (*Result, error) {
	begin := time.Now()
	res, err := s.generate(req, begin, onToken)
	refused := errors.Is(err, ErrBadRequest) || errors.Is(err, ErrContextLength) || errors.Is(err, ErrBadImage)
	if err != nil && !refused {
		// A step failed part way (a device lost, out of memory): the cache counts only
		// complete steps, but the GPU's buffers are no longer to be trusted; start over.
		s.ResetCache()
	}
	return res, err
}

func (s *Session) generate(req Request, begin time.Time, onToken func(id int, text string) bool) (*Result, error) {
	cfg := s.Cfg
	// Ids, not text: a vicuna prompt's earlier answers end in the eos id, which no text
	// tokenizes to (model.PromptIDs); the prompt's byte bound is checked before tokenizing.
	in, err := model.PromptInputs(s.Tok, req.Template, req.Query, req.History, req.Image != nil, cfg)
	if errors.Is(err, model.ErrContextLength) {
		return nil, fmt.Errorf("%v: %w", err, ErrContextLength)
	}
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrBadRequest)
	}
	f := &gpuForward{s: s, template: req.Template}
	var visionTime time.Duration
	if req.Image != nil {
		start := time.Now()
		if err := s.encodeImage(req.Image); err != nil {
			return nil, err
		}
		f.image, f.imageKey, visionTime = &s.vision.Out, s.imageHash, time.Since(start)
	}
	if req.CapNewTokens {
		req.Sampling.MaxNewTokens = model.CapNewTokens(req.Sampling.MaxNewTokens, len(in.InputIDs), s.dec.maxSeq)
	}
	if err := model.CheckContextLength(len(in.InputIDs), req.Sampling.MaxNewTokens, cfg); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrContextLength)
	}
	if len(in.InputIDs)+req.Sampling.MaxNewTokens > s.dec.maxSeq {
		return nil, fmt.Errorf("prompt of %d tokens + %d new tokens exceeds this session's %d: %w", len(in.InputIDs), req.Sampling.MaxNewTokens, s.dec.maxSeq, ErrContextLength)
	}
	if f.sampler, err = model.NewSampler(req.Sampling, cfg.VocabSize); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrBadRequest)
	}
	f.setSampling(req.Sampling)
	defer s.dec.SetSampling(nil)

	var res model.Result
	stream := s.Tok.NewStreamDecoder()
	if err := model.RunGeneration(f, f.sampler, in, cfg.EOSTokenID, begin, &res, func(id int) bool {
		return onToken == nil || onToken(id, stream.Push(id))
	}); err != nil {
		return nil, err
	}
	res.Stats.Vision = visionTime
	return &Result{TokenIDs: res.GeneratedIDs, Text: s.Tok.Decode(res.GeneratedIDs), InputIDs: in.InputIDs,
		StopReason: res.StopReason, Stats: res.Stats}, nil
}

// gpuForward is the decoder's forward for the generation loop (model.RunGeneration). It
// keeps the session's record of what the KV cache holds, and chooses the next token on
// the GPU where it can: greedy steps end in the GPU's argmax and GPU-sampled ones
// (SampleOnGPU) in its sampler, each reading back 4 bytes; other settings read the logits
// back for the loop to sample on the CPU. Both draw from the loop's sampler, one number
// per step, so a seed gives the same tokens either way.
type gpuForward struct {
	s        *Session
	image    *kernels.Tensor // the image tokens' rows (Vision.Out); nil without an image
	imageKey model.ImageKey  // the image file's SHA-256; zero without one
	template string
	sampler  *model.Sampler
	onGPU    bool // the token is chosen on the GPU
	draws    bool // ... by the GPU sampler, which takes a draw per step
}

// setSampling makes the decoder's steps end in the argmax, the GPU sampler or the logits.
func (f *gpuForward) setSampling(settings model.Sampling) {
	greedy := settings.Temperature == 0 && (settings.RepetitionPenalty == 0 || settings.RepetitionPenalty == 1)
	f.onGPU = greedy || kernels.SampleOnGPU(settings)
	f.draws = f.onGPU && !greedy
	if f.draws {
		f.s.dec.SetSampling(&settings)
	} else {
		f.s.dec.SetSampling(nil)
	}
}

// Prefill runs the prompt after the longest prefix the cache holds for this image and
// template (Session.reusable).
func (f *gpuForward) Prefill(in model.Inputs) (model.Next, int, error) {
	s := f.s
	mask := in.VisionExpertMask()
	reused := s.reusable(in, mask, f.imageKey, f.template)
	// from here the cache holds the reused prefix, then what this request adds to it
	s.kv.Truncate(reused)
	s.kv.Image, s.kvTemplate = f.imageKey, f.template
	if err := f.draw(); err != nil {
		return model.Next{}, 0, err
	}
	tok, err := s.dec.PrefillFrom(in, f.image, reused)
	if err != nil {
		return model.Next{}, 0, err
	}
	s.kv.AppendInputs(in, mask, reused)
	next, err := f.next(tok)
	return next, reused, err
}

// Decode feeds id: the token the GPU chose is already in its buffer; one the CPU sampled
// is written there first.
func (f *gpuForward) Decode(id int) (model.Next, error) {
	s := f.s
	if !f.onGPU {
		if err := s.dec.SetToken(id); err != nil {
			return model.Next{}, err
		}
	}
	if err := f.draw(); err != nil {
		return model.Next{}, err
	}
	tok, err := s.dec.Decode()
	if err != nil {
		return model.Next{}, err
	}
	s.kv.AppendGenerated(id)
	return f.next(tok)
}

// draw queues the GPU sampler's number for the next step.
func (f *gpuForward) draw() error {
	if !f.draws {
		return nil
	}
	return f.s.dec.SetDraw(f.sampler.Uniform())
}

// next is the step's outcome: the GPU's token, or the logits for the loop to sample.
func (f *gpuForward) next(tok int) (model.Next, error) {
	if f.onGPU {
		return model.Next{Token: tok}, nil
	}
	logits, err := f.s.dec.Logits()
	return model.Next{Logits: logits}, err
}

// ErrBadImage marks an image that cannot be decoded or is too large.
var ErrBadImage = errors.New("bad image")

// encodeImage runs the vision tower unless the same image is already encoded: a
// follow-up question about the same image reuses its rows.
func (s *Session) encodeImage(data []byte) error {
	sum := sha256.Sum256(data)
	if s.hasImage && sum == s.imageHash {
		return nil
	}
	pixels, err := imageproc.Preprocess(bytes.NewReader(data), s.Cfg.Vision.ImageSize, 0)
	if err != nil {
		return fmt.Errorf("%v: %w", err, ErrBadImage)
	}
	if s.vision == nil {
		if s.vision, err = NewVision(s.K, s.Pkg); err != nil {
			return err
		}
	}
	s.hasImage = false
	if err := s.vision.Encode(pixels); err != nil {
		return err
	}
	// Wait for the GPU, so the vision time is the tower's and not just its submission.
	if err := s.K.Dev.Sync(); err != nil {
		return err
	}
	s.imageHash, s.hasImage = sum, true
	s.visionRuns++
	return nil
}
