//go:build js && wasm

package engine

import (
	"encoding/binary"
	"fmt"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

// Decoder runs CogVLM's language model (both experts) on the GPU, mirroring
// model/decoder.go op for op. Activations and the KV cache are allocated once; the decode
// plan is built once and replayed every token with only the step uniform, the position
// and the token id changing — and the token id is written by the previous step's argmax
// on the GPU, so nothing but the 4-byte id is read back.
type Decoder struct {
	k   *kernels.Kernels
	p   *Package
	cfg model.Config

	maxSeq, maxPrefill int

	// activations, [maxPrefill, width] (or one row)
	x, x2, xb, q, att, qkv, gate, up, act kernels.Tensor
	hidden, logits                        kernels.Tensor
	kv                                    []kernels.KVCache // per layer [maxSeq, H] each
	ropeTable                             kernels.Tensor
	prefillIDs, prefillPos                kernels.Tensor // u32 [maxPrefill]
	token, decodePos                      kernels.Tensor // u32 [1]: argmax output = next step's input
	staging                               *gpu.Buffer    // mappable copy of token
	state                                 *kernels.StepState
	draw                                  *gpu.Buffer // sample.wgsl's per-step Draw

	decode        *kernels.Plan   // ends in the GPU argmax
	decodeSampled *kernels.Plan   // ends in the GPU sampler (built at first use)
	sampling      *model.Sampling // non-nil: steps end in the GPU sampler
	partKeys      int             // decode attention split in partitions of this many keys; 0: no split
	partial       kernels.Tensor  // the split's partial results
	length        int             // tokens in the KV cache
	lastPos       int             // position id of the last token
}

// decodePartKeys is the partition size of decode attention over caches longer than it: a
// 2048-token cache is 8 partitions × heads workgroups instead of heads.
var decodePartKeys = 256

// NewDecoder allocates the session's buffers for sequences of up to maxSeq tokens and
// prompts of up to maxPrefill tokens, with a KV cache in kv, and builds the decode plan.
func NewDecoder(k *kernels.Kernels, p *Package, maxSeq, maxPrefill int, kv kernels.KVPrecision) (*Decoder, error) {
	cfg := p.Config
	H, I, V := cfg.HiddenSize, cfg.IntermediateSize, cfg.VocabSize
	if maxSeq > cfg.MaxPositionEmbeddings {
		return nil, fmt.Errorf("max sequence %d exceeds max_position_embeddings %d", maxSeq, cfg.MaxPositionEmbeddings)
	}
	d := &Decoder{k: k, p: p, cfg: cfg, maxSeq: maxSeq, maxPrefill: maxPrefill}
	var err error
	allocBytes := func(label string, bytes int) kernels.Tensor {
		if err != nil {
			return kernels.Tensor{}
		}
		var b *gpu.Buffer
		b, err = k.Dev.CreateBuffer(label, uint64(bytes), gpu.UsageStorage|gpu.UsageCopyDst|gpu.UsageCopySrc)
		return kernels.Whole(b)
	}
	alloc := func(label string, floats int) kernels.Tensor { return allocBytes(label, 4*floats) }
	R := maxPrefill
	d.x, d.x2, d.xb = alloc("x", R*H), alloc("x2", R*H), alloc("xb", R*H)
	d.q, d.att, d.qkv = alloc("q", R*H), alloc("att", R*H), alloc("qkv", R*3*H)
	d.gate, d.up, d.act = alloc("gate", R*I), alloc("up", R*I), alloc("act", R*I)
	d.hidden, d.logits = alloc("hidden", H), alloc("logits", V)
	for l := range cfg.NumHiddenLayers {
		d.kv = append(d.kv, kernels.KVCache{
			K:         allocBytes(fmt.Sprintf("k cache %d", l), kvCacheBytes(maxSeq, H, kv)),
			V:         allocBytes(fmt.Sprintf("v cache %d", l), kvCacheBytes(maxSeq, H, kv)),
			Precision: kv,
		})
	}
	d.prefillIDs, d.prefillPos = alloc("prefill ids", R), alloc("prefill positions", R)
	d.token, d.decodePos = alloc("token", 1), alloc("decode position", 1)
	d.ropeTable = alloc("rope table", cfg.MaxPositionEmbeddings*cfg.HeadDim())
	if maxSeq > decodePartKeys {
		d.partKeys = decodePartKeys
		d.partial = alloc("attention partials", kernels.AttentionPartials(1, cfg.NumAttentionHeads, cfg.HeadDim(), maxSeq, d.partKeys))
	}
	if err != nil {
		return nil, err
	}
	if err := k.Dev.WriteBuffer(d.ropeTable.Buf, 0, gpu.Float32Bytes(kernels.RoPETable(cfg.MaxPositionEmbeddings, cfg.HeadDim(), model.RoPEBase))); err != nil {
		return nil, err
	}
	if d.state, err = k.NewStepState("step"); err != nil {
		return nil, err
	}
	if d.staging, err = k.Dev.CreateBuffer("token read-back", 4, gpu.UsageMapRead|gpu.UsageCopyDst); err != nil {
		return nil, err
	}
	if d.draw, err = k.Dev.CreateBuffer("sample draw", 16, gpu.UsageUniform|gpu.UsageCopyDst|gpu.UsageCopySrc); err != nil {
		return nil, err
	}
	if d.decode, err = d.plan(1, d.token, d.decodePos, []model.ExpertRun{{Start: 0, End: 1}}, imageRows{}, false); err != nil {
		return nil, err
	}
	return d, nil
}

// kvCacheBytes is the size of one layer's k (or v) cache, whole u32 words.
func kvCacheBytes(maxSeq, hidden int, kv kernels.KVPrecision) int {
	return (maxSeq*hidden*kv.BytesPerValue() + 3) &^ 3
}

// imageRows places an image's token rows (Vision.Out) over rows [start, start+count) of
// the prompt's embeddings.
type imageRows struct {
	src          kernels.Tensor
	start, count int
}

// plan records the forward pass of n new tokens (ids and positions in u32 buffers) into
// the KV cache at state.write_row, ending with the next token in d.token: the argmax of
// the last row's logits, or the GPU sampler's draw (sampled). It mirrors model's
// decoderState.forward.
func (d *Decoder) plan(n int, ids, positions kernels.Tensor, runs []model.ExpertRun, img imageRows, sampled bool) (*kernels.Plan, error) {
	cfg, k := d.cfg, d.k
	H, eps := cfg.HiddenSize, float32(cfg.RMSNormEps)
	r := &recorder{pkg: d.p}

	// token embeddings; the image tokens' rows replace their (pad) embeddings
	r.op(k.Embed(d.x, ids, r.weight(model.EmbedTokensName), n))
	if img.count > 0 {
		r.op(k.Copy(d.x.Rows(img.start, img.count, H), img.src, img.count*H))
	}
	for l := range cfg.NumHiddenLayers {
		d.layer(r, l, n, positions, runs)
	}

	// final norm and lm_head on the last row, then the next token into d.token
	r.op(k.RMSNorm(d.hidden, d.x.Rows(n-1, 1, H), r.weight(model.NormName).Data, 1, H, eps))
	r.op(k.Linear(d.logits, d.hidden, r.weight(model.LMHeadName), nil, 1))
	if sampled {
		r.op(k.Sample(d.token, d.logits, d.draw, cfg.VocabSize))
	} else {
		r.op(k.Argmax(d.token, d.logits, cfg.VocabSize))
	}
	return r.done()
}

// layer records decoder layer l over n new tokens, whose keys and values go into the
// cache after the state's write_row. Each expert's weights run on its rows (runs) only.
// It mirrors model's decoderState.layer, with x2 holding the residual stream after
// attention.
func (d *Decoder) layer(r *recorder, l, n int, positions kernels.Tensor, runs []model.ExpertRun) {
	cfg, k := d.cfg, d.k
	H, heads := cfg.HiddenSize, cfg.NumAttentionHeads
	eps := float32(cfg.RMSNormEps)
	names := model.LayerTensorNames(l)

	// attention rmsnorm
	r.op(k.RMSNorm(d.xb, d.x, r.weight(names.InputLayernorm).Data, n, H, eps))

	// q, k, v of each expert: the fused weight's rows are [q; k; v]
	for _, run := range runs {
		d.expertLinear(r, run, d.qkv, 3*H, d.xb, H, names.Expert(run.Vision).QueryKeyValue)
	}

	// rotary embeddings at the CogVLM position ids; k and v into the cache
	r.op(k.QKVRoPE(d.q, d.kv[l], d.qkv, positions, d.ropeTable, d.state, n, heads, cfg.HeadDim()))

	// causal attention over the cached and the new keys
	d.attention(r, l, n)

	// output projection of each expert, residual
	for _, run := range runs {
		d.expertLinear(r, run, d.xb, H, d.att, H, names.Expert(run.Vision).Dense)
	}
	r.op(k.Add(d.x2, d.x, d.xb, n*H))

	// ffn rmsnorm
	r.op(k.RMSNorm(d.xb, d.x2, r.weight(names.PostAttentionLayernorm).Data, n, H, eps))

	// SwiGLU MLP of each expert: down(silu(gate(x)) * up(x)), residual
	for _, run := range runs {
		d.mlp(r, run, names.Expert(run.Vision))
	}
	r.op(k.Add(d.x, d.x2, d.xb, n*H))
}

// expertLinear records one expert's Linear (no bias) on its rows: out = in·Wᵀ over rows
// [run.Start, run.End) of in [*, inWidth] and out [*, outWidth].
func (d *Decoder) expertLinear(r *recorder, run model.ExpertRun, out kernels.Tensor, outWidth int, in kernels.Tensor, inWidth int, weight string) {
	m := run.End - run.Start
	r.op(d.k.Linear(out.Rows(run.Start, m, outWidth), in.Rows(run.Start, m, inWidth), r.weight(weight), nil, m))
}

// attention records layer l's causal attention of n new queries over the cache; decode
// over a long cache is split over the sequence.
func (d *Decoder) attention(r *recorder, l, n int) {
	cfg, k := d.cfg, d.k
	heads, headDim := cfg.NumAttentionHeads, cfg.HeadDim()
	if n == 1 && d.partKeys > 0 {
		r.add(k.AttentionSplit(d.att, d.q, d.kv[l], d.partial, d.state, 1, heads, headDim, true, d.maxSeq, d.partKeys))
		return
	}
	r.op(k.Attention(d.att, d.q, d.kv[l], d.state, n, heads, headDim, true))
}

// mlp records one expert's SwiGLU on its rows of xb, in place: the down projection
// overwrites the rows it read.
func (d *Decoder) mlp(r *recorder, run model.ExpertRun, e model.ExpertNames) {
	k, H, I := d.k, d.cfg.HiddenSize, d.cfg.IntermediateSize
	m := run.End - run.Start
	in := d.xb.Rows(run.Start, m, H)
	// gate, up and act are scratch of this run alone, so they start at row 0
	gate, up, act := d.gate.Rows(0, m, I), d.up.Rows(0, m, I), d.act.Rows(0, m, I)
	r.op(k.Linear(gate, in, r.weight(e.GateProj), nil, m))
	r.op(k.Linear(up, in, r.weight(e.UpProj), nil, m))
	r.op(k.SiLUMul(act, gate, up, m*I))
	r.op(k.Linear(in, act, r.weight(e.DownProj), nil, m))
}

func u32s(v []int) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

// Prefill runs a prompt (input ids, token types and position ids as model.BuildInputs
// makes them) from an empty cache and returns the greedy next token. image holds the
// image tokens' rows (Vision.Out) when the prompt has image tokens.
func (d *Decoder) Prefill(in model.Inputs, image *kernels.Tensor) (int, error) {
	return d.PrefillFrom(in, image, 0)
}

// PrefillFrom is Prefill over a cache whose first reused rows already hold the keys and
// values of in's first reused tokens (the Session checks that they are the same tokens,
// model.KVTokens): it runs only the tokens after them, at their positions and experts in
// the full prompt, and attends over all. Until it returns, the cache counts only the
// reused rows, so a failure leaves it consistent.
func (d *Decoder) PrefillFrom(in model.Inputs, image *kernels.Tensor, reused int) (int, error) {
	n := len(in.InputIDs)
	switch {
	case n == 0:
		return 0, fmt.Errorf("empty prompt")
	case reused < 0 || reused >= n || reused > d.length:
		return 0, fmt.Errorf("reusing %d of %d prompt tokens from a cache of %d", reused, n, d.length)
	case n-reused > d.maxPrefill:
		return 0, fmt.Errorf("prompt of %d tokens exceeds this session's %d", n-reused, d.maxPrefill)
	case n >= d.maxSeq:
		return 0, fmt.Errorf("prompt of %d tokens leaves no room in a KV cache of %d", n, d.maxSeq)
	}
	var img imageRows
	for i, t := range in.TokenTypeIDs {
		if t == model.VisionTokenType {
			if img.count == 0 {
				img.start = i
			}
			img.count++
		}
	}
	switch {
	case img.count > 0 && image == nil:
		return 0, fmt.Errorf("the prompt has %d image tokens but no image rows were given", img.count)
	case img.count > 0 && img.count != d.cfg.NumImageTokens():
		return 0, fmt.Errorf("the prompt has %d image tokens, want %d for one image", img.count, d.cfg.NumImageTokens())
	case img.count > 0:
		// the image's rows after the reused ones, at their rows among the new tokens
		skip := min(max(reused-img.start, 0), img.count)
		img.src = image.Rows(skip, img.count-skip, d.cfg.HiddenSize)
		img.start, img.count = max(img.start-reused, 0), img.count-skip
	}
	d.length = reused
	if reused > 0 {
		d.lastPos = in.PositionIDs[reused-1]
	}
	mark := d.k.Params.Mark()
	defer d.k.Params.Release(mark)
	plan, err := d.plan(n-reused, d.prefillIDs, d.prefillPos, model.ExpertRuns(nil, in.VisionExpertMask()[reused:]), img, d.sampling != nil)
	if err != nil {
		return 0, err
	}
	dev := d.k.Dev
	if err := dev.WriteBuffer(d.prefillIDs.Buf, 0, u32s(in.InputIDs[reused:])); err != nil {
		return 0, err
	}
	if err := dev.WriteBuffer(d.prefillPos.Buf, 0, u32s(in.PositionIDs[reused:])); err != nil {
		return 0, err
	}
	if err := d.state.Set(dev, n, reused); err != nil {
		return 0, err
	}
	tok, err := d.k.RunRead(plan, d.token, d.staging)
	if err != nil {
		return 0, err
	}
	if err := d.k.Dev.Err(); err != nil {
		return 0, err
	}
	d.length, d.lastPos = n, in.PositionIDs[n-1]
	return int(tok), nil
}

// Length is the number of tokens in the KV cache.
func (d *Decoder) Length() int { return d.length }

// Reset empties the KV cache: the next step must be a Prefill.
func (d *Decoder) Reset() { d.length = 0 }

// Decode feeds the last returned token (already on the GPU) at the next position and
// returns the greedy next token.
func (d *Decoder) Decode() (int, error) {
	if d.length == 0 {
		return 0, fmt.Errorf("decode before prefill")
	}
	if d.length >= d.maxSeq {
		return 0, fmt.Errorf("KV cache full at %d tokens", d.length)
	}
	dev := d.k.Dev
	var err error
	if err = dev.WriteBuffer(d.decodePos.Buf, 0, u32s([]int{d.lastPos + 1})); err != nil {
		return 0, err
	}
	if err := d.state.Set(dev, d.length+1, d.length); err != nil {
		return 0, err
	}
	plan := d.decode
	if d.sampling != nil {
		if d.decodeSampled == nil {
			if d.decodeSampled, err = d.plan(1, d.token, d.decodePos, []model.ExpertRun{{Start: 0, End: 1}}, imageRows{}, true); err != nil {
				return 0, err
			}
		}
		plan = d.decodeSampled
	}
	tok, err := d.k.RunRead(plan, d.token, d.staging)
	if err != nil {
		return 0, err
	}
	if err := d.k.Dev.Err(); err != nil {
		return 0, err
	}
	d.length++
	d.lastPos++
	return int(tok), nil
}

// Logits reads back the logits of the last step (for checks against the CPU reference).
func (d *Decoder) Logits() ([]float32, error) {
	b, err := d.k.Dev.ReadBuffer(d.logits.Buf, 0, uint64(4*d.cfg.VocabSize))
	if err != nil {
		return nil, err
	}
	return gpu.BytesFloat32(b), nil
}

// SetToken replaces the token the next Decode feeds (after sampling on the CPU).
func (d *Decoder) SetToken(id int) error {
	return d.k.Dev.WriteBuffer(d.token.Buf, 0, u32s([]int{id}))
}

// SetSampling makes the following steps end in the GPU sampler with settings s (which
// SampleOnGPU must accept), or in the greedy argmax for nil. Each sampled step needs its
// draw: SetDraw before Prefill and before every Decode.
func (d *Decoder) SetSampling(s *model.Sampling) { d.sampling = s }

// SetDraw queues the next sampled step's uniform number u in [0, 1).
func (d *Decoder) SetDraw(u float64) error {
	if d.sampling == nil {
		return nil
	}
	return d.k.Dev.WriteBuffer(d.draw, 0, kernels.DrawBytes(*d.sampling, u))
}
