//go:build js && wasm

package engine

import (
	"fmt"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

// Vision runs the EVA2-CLIP tower and the GLU adapter on the GPU, mirroring
// model/vision.go and model/adapter.go op for op. Its buffers and plan are made once; an
// image costs one upload of its patch rows and one replay. Out holds the image tokens'
// rows [boi, grid² features, eoi] for the decoder's prefill.
type Vision struct {
	k    *kernels.Kernels
	cfg  model.Config
	plan *kernels.Plan

	cols                        kernels.Tensor // [grid², C·P·P] patch rows (model.Patches)
	patchOut, x, x2, h, hn, att kernels.Tensor // [N, D]
	qkv                         kernels.Tensor // [N, 3D]
	q, kk, v                    kernels.Tensor // [N, D]
	mlp                         kernels.Tensor // [N, F]
	ah, ahn, agate, aup, aact   kernels.Tensor // adapter: [grid², H], [grid², I]
	Out                         kernels.Tensor // [grid²+2, H]
	state                       *kernels.StepState
}

// NewVision allocates the tower's buffers and records its plan.
func NewVision(k *kernels.Kernels, p *Package) (*Vision, error) {
	cfg := p.Config
	vc := cfg.Vision
	D, F, H, I := vc.HiddenSize, vc.IntermediateSize, cfg.HiddenSize, cfg.IntermediateSize
	grid := vc.ImageSize / vc.PatchSize
	patches := grid * grid
	N := patches + 1
	patchLen := vc.InChannels * vc.PatchSize * vc.PatchSize
	v := &Vision{k: k, cfg: cfg}
	var err error
	alloc := func(label string, floats int) kernels.Tensor {
		if err != nil {
			return kernels.Tensor{}
		}
		var b *gpu.Buffer
		b, err = k.Dev.CreateBuffer("vision "+label, uint64(4*floats), gpu.UsageStorage|gpu.UsageCopyDst|gpu.UsageCopySrc)
		return kernels.Whole(b)
	}
	v.cols = alloc("patch rows", patches*patchLen)
	v.patchOut, v.x, v.x2 = alloc("patch embeddings", patches*D), alloc("x", N*D), alloc("x2", N*D)
	v.h, v.hn, v.att = alloc("h", N*D), alloc("hn", N*D), alloc("att", N*D)
	v.qkv, v.q, v.kk, v.v = alloc("qkv", 3*N*D), alloc("q", N*D), alloc("k", N*D), alloc("v", N*D)
	v.mlp = alloc("mlp", N*F)
	v.ah, v.ahn = alloc("adapter h", patches*H), alloc("adapter hn", patches*H)
	v.agate, v.aup, v.aact = alloc("adapter gate", patches*I), alloc("adapter up", patches*I), alloc("adapter act", patches*I)
	v.Out = alloc("image rows", (patches+2)*H)
	if err != nil {
		return nil, err
	}
	if v.state, err = k.NewStepState("vision step"); err != nil {
		return nil, err
	}
	if err := v.state.Set(k.Dev, N, 0); err != nil { // full attention over all N rows
		return nil, err
	}
	if v.plan, err = v.record(p); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *Vision) record(p *Package) (*kernels.Plan, error) {
	k, cfg := v.k, v.cfg
	vc := cfg.Vision
	D, H, I := vc.HiddenSize, cfg.HiddenSize, cfg.IntermediateSize
	heads := vc.NumHeads
	grid := vc.ImageSize / vc.PatchSize
	patches := grid * grid
	N := patches + 1
	eps := float32(vc.LayerNormEps)
	plan := &kernels.Plan{}
	var err error
	add := func(s kernels.Step, e error) {
		if err == nil && e != nil {
			err = e
		}
		plan.Add(s)
	}
	w := func(format string, a ...any) kernels.Weight {
		wt, e := p.Weight(fmt.Sprintf(format, a...))
		if err == nil && e != nil {
			err = e
		}
		return wt
	}
	bias := func(format string, a ...any) *kernels.Weight {
		b := w(format, a...)
		return &b
	}

	// patch embedding: the conv weight [D, C, P, P] as the matrix [D, C·P·P]
	conv := w("model.vision.patch_embedding.proj.weight")
	if len(conv.Shape) == 4 {
		conv.Shape = []int{conv.Shape[0], conv.Shape[1] * conv.Shape[2] * conv.Shape[3]}
	}
	add(k.Linear(v.patchOut, v.cols, conv, bias("model.vision.patch_embedding.proj.bias"), patches))
	// cls first, position embeddings on every row
	add(k.VisionEmbed(v.x, w("model.vision.patch_embedding.cls_embedding").Data, v.patchOut,
		w("model.vision.patch_embedding.position_embedding.weight").Data, N, D))
	for l := range vc.NumHiddenLayers {
		pre := "model.vision.transformer.layers.%d."
		// attention; the norm on the branch output, inside the residual
		add(k.Linear(v.qkv, v.x, w(pre+"attention.query_key_value.weight", l), bias(pre+"attention.query_key_value.bias", l), N))
		add(k.SplitQKV(v.q, v.kk, v.v, v.qkv, N, D))
		add(k.Attention(v.att, v.q, kernels.KVCache{K: v.kk, V: v.v}, v.state, N, heads, D/heads, false))
		add(k.Linear(v.h, v.att, w(pre+"attention.dense.weight", l), bias(pre+"attention.dense.bias", l), N))
		add(k.LayerNorm(v.hn, v.h, w(pre+"input_layernorm.weight", l).Data, w(pre+"input_layernorm.bias", l).Data, N, D, eps))
		add(k.Add(v.x2, v.x, v.hn, N*D))
		// MLP: x = x + LN_post(fc2(gelu(fc1(x))))
		add(k.Linear(v.mlp, v.x2, w(pre+"mlp.fc1.weight", l), bias(pre+"mlp.fc1.bias", l), N))
		add(k.GELU(v.mlp, N*vc.IntermediateSize))
		add(k.Linear(v.h, v.mlp, w(pre+"mlp.fc2.weight", l), bias(pre+"mlp.fc2.bias", l), N))
		add(k.LayerNorm(v.hn, v.h, w(pre+"post_attention_layernorm.weight", l).Data, w(pre+"post_attention_layernorm.bias", l).Data, N, D, eps))
		add(k.Add(v.x, v.x2, v.hn, N*D))
	}
	// adapter on the patch rows (the cls row dropped): linear_proj, LayerNorm, GELU,
	// silu(gate_proj) * dense_h_to_4h, dense_4h_to_h between boi and eoi
	features := v.x.Rows(1, patches, D)
	add(k.Linear(v.ah, features, w("model.vision.linear_proj.linear_proj.weight"), nil, patches))
	add(k.LayerNorm(v.ahn, v.ah, w("model.vision.linear_proj.norm1.weight").Data, w("model.vision.linear_proj.norm1.bias").Data,
		patches, H, float32(model.AdapterLayerNormEps)))
	add(k.GELU(v.ahn, patches*H))
	add(k.Linear(v.agate, v.ahn, w("model.vision.linear_proj.gate_proj.weight"), nil, patches))
	add(k.Linear(v.aup, v.ahn, w("model.vision.linear_proj.dense_h_to_4h.weight"), nil, patches))
	add(k.SiLUMul(v.aact, v.agate, v.aup, patches*I))
	add(k.Linear(v.Out.Rows(1, patches, H), v.aact, w("model.vision.linear_proj.dense_4h_to_h.weight"), nil, patches))
	add(k.Copy(v.Out.Rows(0, 1, H), w("model.vision.boi").Data, H))
	add(k.Copy(v.Out.Rows(patches+1, 1, H), w("model.vision.eoi").Data, H))
	if err != nil {
		return nil, err
	}
	return plan, nil
}

// Encode runs the tower and the adapter on pixel values (CHW, model/imageproc); the
// image tokens' rows are in v.Out when the GPU is done.
func (v *Vision) Encode(pixels []float32) error {
	if want := v.cfg.PixelCount(); len(pixels) != want {
		return fmt.Errorf("pixel values have %d elements, want %d", len(pixels), want)
	}
	if err := v.k.Dev.WriteBuffer(v.cols.Buf, 0, gpu.Float32Bytes(model.Patches(v.cfg.Vision, pixels))); err != nil {
		return err
	}
	return v.k.Run(v.plan)
}

// Rows reads back the image tokens' rows (for checks against the CPU reference).
func (v *Vision) Rows() ([]float32, error) {
	b, err := v.k.Dev.ReadBuffer(v.Out.Buf, 0, v.Out.Buf.Size)
	if err != nil {
		return nil, err
	}
	return gpu.BytesFloat32(b), nil
}
