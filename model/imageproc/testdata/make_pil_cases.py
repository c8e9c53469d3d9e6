"""Makes the Pillow reference files in testdata/pil/ (not run by the tests).

Each <name>.png/.jpg/.webp input has <name>.pil.png next to it: what
Image.open(input).convert('RGB') returns, and each resize case rz_<case>_src.png has
rz_<case>_want.png: src.resize((W, H), Image.BICUBIC). Made with Debian 12's
python3-pil 9.4.0 (libjpeg-turbo 2.1.5, libwebp 1.2.4):

    cd model/imageproc/testdata && python3 make_pil_cases.py
"""
import subprocess

import numpy as np
from PIL import Image

rng = np.random.default_rng(20240611)
out = "pil/"

# Resize cases: random pixels (the hardest input for bit-exactness) with a few flat
# and saturated areas, so that clipping at 0 and 255 is exercised.
cases = {
    "up_10x10_to_28x28": ((10, 10), (28, 28)),
    "down_61x47_to_17x9": ((61, 47), (17, 9)),
    "mixed_13x40_to_29x11": ((13, 40), (29, 11)),
    "horizontal_33x20_to_12x20": ((33, 20), (12, 20)),
    "vertical_20x33_to_20x12": ((20, 33), (20, 12)),
    "extreme_300x7_to_5x28": ((300, 7), (5, 28)),
}
for name, ((w, h), size) in cases.items():
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    a[: h // 3, : w // 3] = 255
    a[h // 2 :, w // 2 :, 0] = 0
    src = Image.fromarray(a, "RGB")
    src.save(f"{out}rz_{name}_src.png")
    src.resize(size, Image.BICUBIC).save(f"{out}rz_{name}_want.png")

# A photo-like picture: smooth gradients, a sharp red square, mild noise, odd size so
# that chroma planes have a half-covered last column and row.
h, w = 33, 47
yy, xx = np.mgrid[0:h, 0:w]
a = np.stack([128 + 100 * np.sin(xx / 5.0), 128 + 100 * np.cos(yy / 4.0), (xx * 5 + yy * 3) % 256], -1)
a[10:22, 15:30] = [250, 10, 30]
a = (a + rng.integers(-8, 9, a.shape)).clip(0, 255).astype(np.uint8)
photo = Image.fromarray(a, "RGB")
photo.save(f"{out}photo.png")
photo.save(f"{out}photo_420.jpg", quality=90, subsampling=2)
photo.save(f"{out}photo_422.jpg", quality=90, subsampling=1)
photo.save(f"{out}photo_444.jpg", quality=90, subsampling=0)
photo.save(f"{out}photo_progressive.jpg", quality=85, progressive=True)
photo.convert("L").save(f"{out}photo_gray.jpg", quality=90)
photo.convert("CMYK").save(f"{out}photo_cmyk.jpg", quality=90)
photo.save(f"{out}photo_lossy.webp", quality=80)
photo.save(f"{out}photo_lossless.webp", lossless=True)
rgba = np.dstack([a, (xx * 5).clip(0, 255).astype(np.uint8)])
Image.fromarray(rgba, "RGBA").save(f"{out}photo_lossy_alpha.webp", quality=70)
# Pillow cannot write 4:4:0 or 4:1:1; libjpeg-turbo's cjpeg (libjpeg-turbo-progs) can.
photo.save("/tmp/photo.ppm")
for name, sample in [("photo_440.jpg", "1x2"), ("photo_411.jpg", "4x1")]:
    subprocess.run(["cjpeg", "-quality", "90", "-sample", sample, "-outfile", out + name,
                    "/tmp/photo.ppm"], check=True)
for name in ["photo_440.jpg", "photo_411.jpg", "photo_420.jpg", "photo_422.jpg", "photo_444.jpg", "photo_progressive.jpg",
             "photo_gray.jpg", "photo_cmyk.jpg", "photo_lossy.webp", "photo_lossless.webp",
             "photo_lossy_alpha.webp"]:
    Image.open(out + name).convert("RGB").save(out + name + ".pil.png")
