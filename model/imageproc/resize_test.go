package imageproc

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// TestResizeMatchesPillow compares against Image.resize(size, BICUBIC) of Pillow 9.4
// on random pixels (testdata/make_pil_cases.py): enlarging, shrinking, both at once,
// one axis only, and a 60× shrink with a 2× enlargement.
func TestResizeMatchesPillow(t *testing.T) {
	cases := []struct {
		name string
		w, h int
	}{
		{"up_10x10_to_28x28", 28, 28},
		{"down_61x47_to_17x9", 17, 9},
		{"mixed_13x40_to_29x11", 29, 11},
		{"horizontal_33x20_to_12x20", 12, 20},
		{"vertical_20x33_to_20x12", 20, 12},
		{"extreme_300x7_to_5x28", 5, 28},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := mustDecodeFile(t, filepath.Join("testdata", "pil", "rz_"+c.name+"_src.png"))
			want := mustDecodeFile(t, filepath.Join("testdata", "pil", "rz_"+c.name+"_want.png"))
			got := ResizeBicubic(src, c.w, c.h)
			if got.W != want.W || got.H != want.H {
				t.Fatalf("size %dx%d, Pillow %dx%d", got.W, got.H, want.W, want.H)
			}
			if n, first := countDiff(got.Pix, want.Pix); n > 0 {
				t.Errorf("%d of %d values differ from Pillow; first at %s", n, len(want.Pix), first)
			}
		})
	}
}

func TestResizeIdentityCopies(t *testing.T) {
	src := randomRGB(7, 5, 1)
	got := ResizeBicubic(src, 7, 5)
	if !bytes.Equal(got.Pix, src.Pix) {
		t.Fatal("same-size resize changed pixels; Pillow returns a copy")
	}
	got.Pix[0]++
	if got.Pix[0] == src.Pix[0] {
		t.Fatal("same-size resize aliases the source pixels")
	}
}

// A flat image stays flat through any resize: the fixed-point weights of every output
// pixel sum to 1 closely enough that rounding never moves a level, 0 and 255 included.
func TestResizeKeepsFlatImagesFlat(t *testing.T) {
	sizes := [][4]int{{1, 1, 28, 28}, {40, 30, 28, 28}, {1920, 1080, 490, 490}, {3, 700, 490, 2}, {490, 490, 1, 1}}
	for _, v := range []uint8{0, 1, 128, 254, 255} {
		for _, s := range sizes {
			src := &RGB{W: s[0], H: s[1], Pix: bytes.Repeat([]uint8{v, 255 - v, v / 2}, s[0]*s[1])}
			got := ResizeBicubic(src, s[2], s[3])
			want := bytes.Repeat([]uint8{v, 255 - v, v / 2}, s[2]*s[3])
			if n, first := countDiff(got.Pix, want); n > 0 {
				t.Errorf("flat %d, %dx%d → %dx%d: %d values changed, first at %s", v, s[0], s[1], s[2], s[3], n, first)
			}
		}
	}
}

func TestBicubicKernel(t *testing.T) {
	// Keys' kernel with a = -0.5: 1 at 0, 0 at the integers, (a+2)x³−(a+3)x²+1 inside
	// 1 and a(x³−5x²+8x−4) out to 2.
	for _, c := range []struct{ x, want float64 }{
		{0, 1}, {0.5, 0.5625}, {-0.5, 0.5625}, {1, 0}, {1.5, -0.0625}, {-1.5, -0.0625},
		{0.25, 0.8671875}, {1.75, -0.0234375}, {2, 0}, {2.5, 0}, {-7, 0},
	} {
		if got := bicubic(c.x); got != c.want {
			t.Errorf("bicubic(%v) = %v, want %v", c.x, got, c.want)
		}
	}
}

// The window of each output pixel: centred on (i+0.5)·scale, radius 2·max(scale, 1),
// clipped to the input, and the fixed-point weights sum to 1<<22 within rounding.
func TestFilterTaps(t *testing.T) {
	for _, s := range [][2]int{{40, 28}, {30, 28}, {10, 28}, {1, 5}, {5, 1}, {1920, 490}, {1080, 490}, {2, 3}} {
		in, out := s[0], s[1]
		taps := newFilterTaps(in, out)
		scale := float64(in) / float64(out)
		for i := 0; i < out; i++ {
			lo, n := taps.first[i], taps.count[i]
			if lo < 0 || n <= 0 || lo+n > in || n > taps.stride {
				t.Fatalf("%d→%d pixel %d: window [%d, %d) outside [0, %d) or over %d taps", in, out, i, lo, lo+n, in, taps.stride)
			}
			center := (float64(i) + 0.5) * scale
			if float64(lo) > center || float64(lo+n) < center {
				t.Errorf("%d→%d pixel %d: window [%d, %d) misses centre %v", in, out, i, lo, lo+n, center)
			}
			sum := int32(0)
			for _, c := range taps.coef[i*taps.stride : i*taps.stride+n] {
				sum += c
			}
			if d := sum - 1<<precisionBits; d < -int32(n) || d > int32(n) {
				t.Errorf("%d→%d pixel %d: weights sum to %d, want %d ± %d", in, out, i, sum, 1<<precisionBits, n)
			}
		}
	}
}

func TestResizePanicsOnMisuse(t *testing.T) {
	for _, c := range []struct {
		name string
		src  *RGB
		w, h int
	}{
		{"nil source", nil, 2, 2},
		{"empty source", &RGB{}, 2, 2},
		{"short pixels", &RGB{W: 2, H: 2, Pix: make([]uint8, 11)}, 2, 2},
		{"zero width", randomRGB(2, 2, 1), 0, 2},
		{"negative height", randomRGB(2, 2, 1), 2, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			ResizeBicubic(c.src, c.w, c.h)
		})
	}
}

// BenchmarkResize1920x1080To490 is CogVLM's real case: a Full HD photo to 490×490.
func BenchmarkResize1920x1080To490(b *testing.B) {
	src := randomRGB(1920, 1080, 1)
	b.SetBytes(int64(len(src.Pix)))
	for b.Loop() {
		ResizeBicubic(src, 490, 490)
	}
}

func randomRGB(w, h int, seed uint64) *RGB {
	r := rand.New(rand.NewPCG(seed, 0))
	m := &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
	for i := range m.Pix {
		m.Pix[i] = uint8(r.Uint32())
	}
	return m
}

func mustDecodeFile(t *testing.T, path string) *RGB {
	t.Helper()
	m, err := DecodeFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// countDiff counts differing bytes of two HWC RGB buffers and describes the first.
func countDiff(got, want []uint8) (int, string) {
	n, first := 0, ""
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			if n == 0 {
				first = fmt.Sprintf("byte %d: got %d, want %d", i, got[i], want[i])
			}
			n++
		}
	}
	if len(got) != len(want) {
		n += max(len(got), len(want)) - min(len(got), len(want))
		if first == "" {
			first = fmt.Sprintf("length %d vs %d", len(got), len(want))
		}
	}
	return n, first
}
