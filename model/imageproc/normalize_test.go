package imageproc

import (
	"math"
	"testing"
)

// Normalize's layout is CHW and its values are (v/255 − mean)/std. The golden test
// checks bit-exactness against PyTorch; this one checks the layout and the formula
// against float64 arithmetic, within float32's rounding of three operations.
func TestNormalize(t *testing.T) {
	// 3×2 image; pixel (x, y) has channels (10x+y, 100+10x+y, 255−(10x+y)).
	img := &RGB{W: 3, H: 2}
	for y := 0; y < 2; y++ {
		for x := 0; x < 3; x++ {
			v := uint8(10*x + y)
			img.Pix = append(img.Pix, v, 100+v, 255-v)
		}
	}
	got := Normalize(img, CLIPMean, CLIPStd)
	if len(got) != 3*2*3 {
		t.Fatalf("%d values, want 18", len(got))
	}
	for c := 0; c < 3; c++ {
		for y := 0; y < 2; y++ {
			for x := 0; x < 3; x++ {
				v := float64(img.Pix[(y*3+x)*3+c])
				want := (v/255 - float64(CLIPMean[c])) / float64(CLIPStd[c])
				g := float64(got[c*6+y*3+x])
				if math.Abs(g-want) > 4e-7*math.Max(1, math.Abs(want)) {
					t.Errorf("channel %d at (%d, %d): %v, want %v", c, x, y, g, want)
				}
			}
		}
	}
	// The extremes of the CLIP range.
	black := Normalize(&RGB{W: 1, H: 1, Pix: []uint8{0, 0, 0}}, CLIPMean, CLIPStd)
	white := Normalize(&RGB{W: 1, H: 1, Pix: []uint8{255, 255, 255}}, CLIPMean, CLIPStd)
	for c := 0; c < 3; c++ {
		if want := -CLIPMean[c] / CLIPStd[c]; black[c] != want {
			t.Errorf("black channel %d = %v, want %v", c, black[c], want)
		}
		if want := (1 - CLIPMean[c]) / CLIPStd[c]; white[c] != want {
			t.Errorf("white channel %d = %v, want %v", c, white[c], want)
		}
	}
}

func TestNormalizePanicsOnMisuse(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a 2x2 image with 3 bytes")
		}
	}()
	Normalize(&RGB{W: 2, H: 2, Pix: make([]uint8, 3)}, CLIPMean, CLIPStd)
}
