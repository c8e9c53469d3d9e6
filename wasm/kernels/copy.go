//go:build js && wasm

package kernels

import (
	"fmt"

	"github.com/cogvlm-web/cogvlm-web/model"
)

// Copy: dst = src over n floats, moved as vec4s where n and both starts are whole vec4s,
// else one float at a time (copy_f32.wgsl). It is the bandwidth roofline of the kernel
// benchmark: every byte read once and written once, with nothing else to do. src and dst
// may start at any float (bindFrom). CPU twin: model.Copy.
func (k *Kernels) Copy(dst, src Tensor, n int) (Step, error) {
	if n < 1 {
		return Step{}, fmt.Errorf("copy: n=%d floats, want a positive count", n)
	}
	for _, t := range []struct {
		name string
		t    Tensor
	}{{"src", src}, {"dst", dst}} {
		if t.t.Buf == nil {
			return Step{}, fmt.Errorf("copy: %s has no buffer", t.name)
		}
		if have := boundBytes(t.t); have < uint64(4*n) {
			return Step{}, fmt.Errorf("copy: %s (buffer %q) binds %d bytes, fewer than the %d of n=%d floats",
				t.name, t.t.Buf.Label, have, 4*n, n)
		}
	}
	var tw twin
	if debugTwins {
		tw = twinCopy(dst, src, n)
	}
	srcB, srcStart := k.bindFrom(src)
	dstB, dstStart := k.bindFrom(dst)
	if n%4 != 0 || srcStart%4 != 0 || dstStart%4 != 0 {
		s, err := k.step("copy", PipelineKey{Shader: "copy_f32.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}}},
			params(n, srcStart, dstStart, 0), elementwiseGroups(n), 1, 1, srcB, dstB)
		return s.with(tw), err
	}
	vec4s := n / 4
	s, err := k.step("copy", PipelineKey{Shader: "copy.wgsl", Consts: [4]Const{{"WORKGROUP_SIZE", elementwiseWG}, offsets(srcStart, dstStart)}},
		params(vec4s, srcStart/4, dstStart/4, 0), elementwiseGroups(vec4s), 1, 1, srcB, dstB)
	return s.with(tw), err
}

// boundBytes is how many bytes t binds: its Size, or the rest of its buffer.
func boundBytes(t Tensor) uint64 {
	if t.Size != 0 {
		return t.Size
	}
	if t.Offset >= t.Buf.Size {
		return 0
	}
	return t.Buf.Size - t.Offset
}

func twinCopy(dst, src Tensor, n int) twin {
	return func(rd *reader) func(*reader) ([]float32, []float32) {
		want := make([]float32, n)
		model.Copy(want, rd.f32(src, n))
		return func(rd *reader) ([]float32, []float32) { return rd.f32(dst, n), want }
	}
}
