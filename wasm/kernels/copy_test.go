//go:build js && wasm

package kernels

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

func TestCopy(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(3, 1))
	// dst is a window at an offset inside a larger buffer, so the test also sees that
	// nothing outside the n floats is written; src is a window too. A pad of 64 floats is
	// the 256-byte minStorageBufferOffsetAlignment; other pads start the windows between
	// aligned offsets (bindFrom), at whole vec4s (copy.wgsl) or not (copy_f32.wgsl).
	for _, tc := range []struct{ n, pad int }{
		{4, 64}, {1000, 64}, {4096, 64},
		{4 * (maxElementwiseGroups*elementwiseWG + 3), 64}, // more vec4s than invocations: the grid-stride loop
		{4096, 68}, // vec4s at an unaligned offset
		{72, 6},    // floats at an unaligned offset
		{70, 64},   // not whole vec4s
		{1, 1},
	} {
		n, pad := tc.n, tc.pad
		src := randn(r, pad+n, 1)
		before := randn(r, pad+n+pad, 1)
		whole := upload(t, k, "dst", before)
		dst := Tensor{Buf: whole.Buf, Offset: uint64(4 * pad), Size: uint64(4 * n)}
		srcT := upload(t, k, "src", src)
		srcT.Offset = uint64(4 * pad)
		got := run(t, k, whole, len(before), must(t)(k.Copy(dst, srcT, n)))
		want := append([]float32(nil), before...)
		copy(want[pad:pad+n], src[pad:])
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n=%d pad=%d: dst[%d] (window index %d) = %v, want %v", n, pad, i, i-pad, got[i], want[i])
			}
		}
		whole.Buf.Destroy()
		srcT.Buf.Destroy()
	}
}

func TestCopyErrors(t *testing.T) {
	k := kernels(t)
	small, err := k.Dev.CreateBuffer("small", 64, gpu.UsageStorage)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Destroy()
	big, err := k.Dev.CreateBuffer("big", 4096, gpu.UsageStorage)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Destroy()
	for _, tc := range []struct {
		name     string
		dst, src Tensor
		n        int
		want     string
	}{
		{"zero", Whole(big), Whole(big), 0, "positive count"},
		{"dst too small", Whole(small), Whole(big), 32, `dst (buffer "small") binds 64 bytes`},
		{"src window too small", Whole(big), Tensor{Buf: big, Offset: 4000}, 32, `src (buffer "big") binds 96 bytes`},
		{"no buffer", Tensor{}, Whole(big), 4, "dst has no buffer"},
	} {
		_, err := k.Copy(tc.dst, tc.src, tc.n)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
