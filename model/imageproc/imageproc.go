// Package imageproc turns an image file into the pixel_values tensor of CogVLM's vision
// tower, reproducing the reference pipeline bit for bit: Pillow's Image.open(f),
// .convert('RGB'), .resize((S, S), BICUBIC), then torchvision's ToTensor and Normalize
// with the CLIP mean and std. The one inexact step is JPEG's inverse DCT, Go's rather
// than libjpeg-turbo's, which moves a few percent of the pixels by a level or two.
//
// It owns the three steps and nothing else: Decode (PNG, JPEG, GIF, WebP to 8-bit RGB,
// with a pixel budget checked before any pixel is decoded), ResizeBicubic (Pillow's
// antialiased bicubic) and Normalize (float32 CHW). Preprocess chains them.
package imageproc

import (
	"fmt"
	"io"
)

// RGB is an 8-bit RGB image: Pix holds H rows of W pixels, 3 bytes (R, G, B) each,
// row-major with no padding (HWC).
type RGB struct {
	W, H int
	Pix  []uint8
}

// check reports why m is not a usable image, or nil.
func (m *RGB) check() error {
	if m == nil {
		return fmt.Errorf("nil image")
	}
	if m.W <= 0 || m.H <= 0 {
		return fmt.Errorf("image size %dx%d is not positive", m.W, m.H)
	}
	if len(m.Pix) != m.W*m.H*3 {
		return fmt.Errorf("image %dx%d has %d bytes of pixels, want %d", m.W, m.H, len(m.Pix), m.W*m.H*3)
	}
	return nil
}

// CLIPMean and CLIPStd are the per-channel (R, G, B) normalisation constants of
// OpenAI CLIP and EVA-CLIP, which CogVLM's image processor uses. As float32, like the
// tensors torchvision's Normalize builds from them.
var (
	CLIPMean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	CLIPStd  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

// Normalize returns img as float32 in CHW layout ([3][H][W]), each value
// (v/255 − mean[c]) / std[c]. Every operation is a float32 operation in torchvision's
// order (ToTensor divides by 255, Normalize subtracts then divides), so the result is
// bit-identical to the PyTorch pipeline. It panics on an invalid img, a programming
// error.
func Normalize(img *RGB, mean, std [3]float32) []float32 {
	if err := img.check(); err != nil {
		panic("imageproc: Normalize: " + err.Error())
	}
	plane := img.W * img.H
	out := make([]float32, 3*plane)
	for c := 0; c < 3; c++ {
		// One table per channel: 256 values, computed once, exactly as per pixel.
		var lut [256]float32
		for v := range lut {
			lut[v] = (float32(v)/255 - mean[c]) / std[c]
		}
		dst := out[c*plane : (c+1)*plane]
		for i := range dst {
			dst[i] = lut[img.Pix[i*3+c]]
		}
	}
	return out
}

// CheckTargetSize checks the model's image size (vision_config.image_size), the side of the
// square Preprocess resizes to, against the same pixel budget as the input (maxPixels, 0
// meaning DefaultMaxPixels). The fault is then the model's config, not the image given,
// and the error says so; callers check it before opening the image.
func CheckTargetSize(size, maxPixels int) error {
	if size <= 0 {
		return fmt.Errorf("vision_config.image_size %d is not positive", size)
	}
	if limit := pixelLimit(maxPixels); int64(size)*int64(size) > int64(limit) {
		return fmt.Errorf("vision_config.image_size %d: the %dx%d resized image exceeds the limit of %d pixels", size, size, size, limit)
	}
	return nil
}

// Preprocess reads an image and returns CogVLM's pixel_values for it: decoded to RGB
// (at most maxPixels pixels; 0 means DefaultMaxPixels), resized to size×size with
// Pillow's bicubic, normalised with CLIPMean and CLIPStd, as float32 [3][size][size].
func Preprocess(r io.Reader, size, maxPixels int) ([]float32, error) {
	if err := CheckTargetSize(size, maxPixels); err != nil {
		return nil, err
	}
	img, err := Decode(r, maxPixels)
	if err != nil {
		return nil, err
	}
	return Normalize(ResizeBicubic(img, size, size), CLIPMean, CLIPStd), nil
}
