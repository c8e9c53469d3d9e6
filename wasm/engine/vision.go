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

// record records the tower and the adapter, as model's visionTower and adapter.
func (v *Vision) record(p *Package) (*kernels.Plan, error) {
	k, cfg := v.k, v.cfg
	vc := cfg.Vision
	D, H, I := vc.HiddenSize, cfg.HiddenSize, cfg.IntermediateSize
	heads := vc.NumHeads
	grid := vc.ImageSize / vc.PatchSize
	patches := grid * grid
	N := patches + 1
	eps := float32(vc.LayerNormEps)
	r := &recorder{pkg: p}

	// patch embedding: the conv weight [D, C, P, P] as the matrix [D, C·P·P]
	conv := r.weight(model.VisionPatchWeightName)
	if len(conv.Shape) == 4 {
		conv.Shape = []int{conv.Shape[0], conv.Shape[1] * conv.Shape[2] * conv.Shape[3]}
	}
	r.op(k.Linear(v.patchOut, v.cols, conv, r.bias(model.VisionPatchBiasName), patches))
	// cls first, position embeddings on every row
	r.op(k.VisionEmbed(v.x, r.weight(model.VisionClsEmbeddingName).Data, v.patchOut,
		r.weight(model.VisionPositionEmbeddingName).Data, N, D))
	for l := range vc.NumHiddenLayers {
		n := model.VisionLayerTensorNames(l)
		// attention; the norm on the branch output, inside the residual
		r.op(k.Linear(v.qkv, v.x, r.weight(n.QueryKeyValueWeight), r.bias(n.QueryKeyValueBias), N))
		r.op(k.SplitQKV(v.q, v.kk, v.v, v.qkv, N, D))
		r.op(k.Attention(v.att, v.q, kernels.KVCache{K: v.kk, V: v.v}, v.state, N, heads, D/heads, false))
		r.op(k.Linear(v.h, v.att, r.weight(n.DenseWeight), r.bias(n.DenseBias), N))
		r.op(k.LayerNorm(v.hn, v.h, r.weight(n.InputLayernormWeight).Data, r.weight(n.InputLayernormBias).Data, N, D, eps))
		r.op(k.Add(v.x2, v.x, v.hn, N*D))
		// MLP: x = x + LN_post(fc2(gelu(fc1(x))))
		r.op(k.Linear(v.mlp, v.x2, r.weight(n.FC1Weight), r.bias(n.FC1Bias), N))
		r.op(k.GELU(v.mlp, N*vc.IntermediateSize))
		r.op(k.Linear(v.h, v.mlp, r.weight(n.FC2Weight), r.bias(n.FC2Bias), N))
		r.op(k.LayerNorm(v.hn, v.h, r.weight(n.PostAttentionLayernormWeight).Data, r.weight(n.PostAttentionLayernormBias).Data, N, D, eps))
		r.op(k.Add(v.x, v.x2, v.hn, N*D))
	}
	// adapter on the patch rows (the cls row dropped): linear_proj, LayerNorm, GELU,
	// silu(gate_proj) * dense_h_to_4h, dense_4h_to_h between boi and eoi
	features := v.x.Rows(1, patches, D)
	r.op(k.Linear(v.ah, features, r.weight(model.AdapterLinearProjName), nil, patches))
	r.op(k.LayerNorm(v.ahn, v.ah, r.weight(model.AdapterNorm1WeightName).Data, r.weight(model.AdapterNorm1BiasName).Data,
		patches, H, float32(model.AdapterLayerNormEps)))
	r.op(k.GELU(v.ahn, patches*H))
	r.op(k.Linear(v.agate, v.ahn, r.weight(model.AdapterGateProjName), nil, patches))
	r.op(k.Linear(v.aup, v.ahn, r.weight(model.AdapterDenseHTo4HName), nil, patches))
	r.op(k.SiLUMul(v.aact, v.agate, v.aup, patches*I))
	r.op(k.Linear(v.Out.Rows(1, patches, H), v.aact, r.weight(model.AdapterDense4HToHName), nil, patches))
	r.op(k.Copy(v.Out.Rows(0, 1, H), r.weight(model.BOIName).Data, H))
	r.op(k.Copy(v.Out.Rows(patches+1, 1, H), r.weight(model.EOIName).Data, H))
	return r.done()
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
