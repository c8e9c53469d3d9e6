//go:build js && wasm

package engine

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
	// dst is a window at a 256-byte offset (minStorageBufferOffsetAlignment) inside a
	// larger buffer, so the test also sees that nothing outside the n floats is written.
	const pad = 64 // floats on each side of the window
	for _, n := range []int{
		4, 1000, 4096,
		4 * (maxElementwiseGroups*elementwiseWG + 3), // more vec4s than invocations: the grid-stride loop
	} {
		src := randn(r, n, 1)
		before := randn(r, pad+n+pad, 1)
		whole := upload(t, k, "dst", before)
		dst := Tensor{Buf: whole.Buf, Offset: 4 * pad, Size: uint64(4 * n)}
		srcT := upload(t, k, "src", src)
		got := run(t, k, whole, len(before), must(t)(k.Copy(dst, srcT, n)))
		want := append([]float32(nil), before...)
		copy(want[pad:pad+n], src)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n=%d: dst[%d] (window index %d) = %v, want %v", n, i, i-pad, got[i], want[i])
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
		{"not vec4s", Whole(big), Whole(big), 6, "multiple of 4"},
		{"zero", Whole(big), Whole(big), 0, "multiple of 4"},
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
