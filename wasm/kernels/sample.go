//go:build js && wasm

package kernels

import (
	"math"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// maxGPUTopK is the largest top-k sample.wgsl handles; it keeps 512 candidates, which
// leaves room for ties with the k-th logit.
const maxGPUTopK = 256

// SampleOnGPU reports whether sample.wgsl reproduces model.Sampler for s: temperature
// sampling with 1 ≤ top-k ≤ 256 and no repetition penalty. Other settings sample on the
// CPU from read-back logits.
func SampleOnGPU(s model.Sampling) bool {
	return s.Temperature > 0 && s.TopK >= 1 && s.TopK <= maxGPUTopK && (s.RepetitionPenalty == 0 || s.RepetitionPenalty == 1)
}

// DrawBytes is sample.wgsl's Draw: the step's uniform number and the settings.
func DrawBytes(s model.Sampling, u float64) []byte {
	topP := float32(s.TopP)
	return params(float32(u), s.TopK, topP, float32(1/s.Temperature))
}

// Sample writes a token drawn from logits [n] with the settings and draw in the Draw
// uniform to token (u32). CPU twin: model.Sample.
func (k *Kernels) Sample(token, logits Tensor, draw *gpu.Buffer, n int) (Step, error) {
	dt := Tensor{Buf: draw, Size: 16}
	s, err := k.step("sample", PipelineKey{Shader: "sample.wgsl"}, params(n, 0, 0, 0), 1, 1, 1, logits, token, dt)
	if debugTwins {
		s = s.with(func(rd *reader) func(*reader) ([]float32, []float32) {
			l := rd.f32(logits, n)
			d := rd.bytes(dt, 16)
			u := math.Float32frombits(le32(d[0:]))
			settings := model.Sampling{
				Temperature: 1 / float64(math.Float32frombits(le32(d[12:]))),
				TopK:        int(le32(d[4:])),
				TopP:        float64(math.Float32frombits(le32(d[8:]))),
			}
			want, e := model.Sample(l, settings, float64(u))
			if e != nil {
				want = -1 // settings no sampler takes: any token the GPU wrote is a mismatch
			}
			return func(rd *reader) ([]float32, []float32) {
				return []float32{float32(rd.u32(token, 1)[0])}, []float32{float32(want)}
			}
		})
	}
	return s, err
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
