package imageproc

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

// goldenCase is the tiny-chat case: a 40×30 RGB PNG preprocessed to 28×28 by the
// PyTorch reference (Pillow decode, convert, BICUBIC resize; torchvision normalise).
var goldenCase = filepath.Join("..", "..", "testdata", "golden", "tiny-chat")

// readGolden reads a float32 tensor of expected.safetensors and checks its shape.
func readGolden(t *testing.T, name string, shape ...int) []float32 {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(goldenCase, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, got, err := f.ReadFloat32(name)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, shape) {
		t.Fatalf("%s has shape %v, want %v", name, got, shape)
	}
	return v
}

// asBytes turns a tensor of integer pixel values 0…255 into bytes, failing on any
// other value.
func asBytes(t *testing.T, name string, v []float32) []uint8 {
	t.Helper()
	out := make([]uint8, len(v))
	for i, f := range v {
		if f < 0 || f > 255 || f != float32(math.Trunc(float64(f))) {
			t.Fatalf("%s[%d] = %v is not a pixel value", name, i, f)
		}
		out[i] = uint8(f)
	}
	return out
}

func TestGoldenImage(t *testing.T) {
	wantRGB := asBytes(t, "image_rgb", readGolden(t, "image_rgb", 30, 40, 3))
	wantResized := asBytes(t, "resized_rgb", readGolden(t, "resized_rgb", 28, 28, 3))
	wantPixels := readGolden(t, "pixel_values", 1, 3, 28, 28)

	img := mustDecodeFile(t, filepath.Join(goldenCase, "image.png"))
	if img.W != 40 || img.H != 30 {
		t.Fatalf("decoded %dx%d, want 40x30", img.W, img.H)
	}
	if n, first := countDiff(img.Pix, wantRGB); n > 0 {
		t.Fatalf("image_rgb: %d values differ; first at %s", n, first)
	}

	resized := ResizeBicubic(img, 28, 28)
	if n, first := countDiff(resized.Pix, wantResized); n > 0 {
		t.Fatalf("resized_rgb: %d values differ; first at %s", n, first)
	}

	// Bit-exact, not just within the golden README's 1e-6: the arithmetic is the same.
	got := Normalize(resized, CLIPMean, CLIPStd)
	checkExact(t, "pixel_values (Normalize)", got, wantPixels)

	f, err := os.Open(filepath.Join(goldenCase, "image.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pre, err := Preprocess(f, 28, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkExact(t, "pixel_values (Preprocess)", pre, wantPixels)
}

func checkExact(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	n, maxDiff := 0, 0.0
	for i := range want {
		if got[i] != want[i] {
			n++
			maxDiff = max(maxDiff, math.Abs(float64(got[i]-want[i])))
		}
	}
	if n > 0 {
		t.Errorf("%s: %d of %d values differ, by up to %g", name, n, len(want), maxDiff)
	}
}
