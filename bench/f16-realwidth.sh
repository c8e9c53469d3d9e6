#!/usr/bin/env bash
# bench/f16-realwidth.sh: the f16 path's accuracy at CogVLM's real widths (issue 16, item 3),
# on Mesa's lavapipe under Dawn for Node, the CPU adapter here that has shader-f16.
#
# Makes (once; again when model/ or cmd/ change) a q4 package at cogvlm-chat-hf's widths,
# one decoder and one vision layer, as internal/e2e's TestRealWidth does: demo-model
# --preset cogvlm-base-224-hf (hidden 4096, MLP 11008, vocabulary 32000, vision 1792 × 15360;
# 224 pixels, 258 image tokens) → convert --quant q4 (0.6 GB) into .bin/realwidth/, with the
# CPU reference's inputs and token for a text and an image prompt (cogvlm generate --json).
# Then runs wasm/engine's TestF16RealWidth on it: prefill logits of the f16 path against the
# f32 path (Kernels.NoF16), cosine ≥ 0.9999, with the max logit error, the f32 top-2 margin
# and each path's time in the log (bench/README.md, "The f16 path"). On 2 shared vCPUs
# it takes tens of minutes (the image prompt's prefill on the f16 path most), which is why
# it is here and not in ./build.sh test.
#
# Arguments go to `go test` after the defaults, e.g. -run 'TestF16RealWidth/text' for the
# text prompt alone (a minute). Needs what ./build.sh test-lavapipe installs (.bin/gpu-node, Mesa ≥ 24's lavapipe): run
# that once first. LAVAPIPE_ICD overrides the Vulkan driver manifest.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

dir=.bin/realwidth
name=base-224-q4
icd=${LAVAPIPE_ICD:-/usr/share/vulkan/icd.d/lvp_icd.json}
runner=$repo/.bin/gpu-node/go_js_wasm_webgpu_exec
[ -x "$runner" ] || { echo "no $runner: run ./build.sh test-lavapipe once first" >&2; exit 1; }
[ -f "$icd" ] || { echo "no lavapipe driver manifest $icd (install mesa-vulkan-drivers ≥ 24, or set LAVAPIPE_ICD)" >&2; exit 1; }

go build -o .bin/cogvlm ./cmd/cogvlm
# the package is a function of the converter and the CPU reference: made again when they change
stamp="$(git rev-parse HEAD:model HEAD:cmd) $(git diff HEAD -- model cmd | sha256sum | cut -c1-16)"
if [ "$(cat "$dir/stamp" 2>/dev/null)" != "$stamp" ] || [ ! -f "$dir/$name.image.json" ]; then
  echo "== making the real-width package in $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  .bin/cogvlm demo-model --preset cogvlm-base-224-hf --layers 1 --vision-layers 1 --out "$dir/hf"
  .bin/cogvlm convert --force --in "$dir/hf" --out "$dir/$name" --quant q4
  rm -rf "$dir/hf"
  .bin/cogvlm generate --model "$dir/$name" --query "The quick brown fox" --template base \
    --temperature 0 --max-new-tokens 1 --json | tail -n 1 > "$dir/$name.text.json"
  .bin/cogvlm generate --model "$dir/$name" --image testdata/golden/tiny-chat/image.png \
    --query "What is in this image?" --template chat --temperature 0 --max-new-tokens 1 --json \
    | tail -n 1 > "$dir/$name.image.json"
  echo "$stamp" > "$dir/stamp"
fi

echo "== TestF16RealWidth on lavapipe ($icd)"
start=$(date +%s)
VK_ICD_FILENAMES=$icd GOOS=js GOARCH=wasm \
  go test -count=1 -v -timeout 120m -run '^TestF16RealWidth$' -exec "$runner" ./wasm/engine \
  -realwidth "/repo/$dir/$name" "$@"
echo "TestF16RealWidth: $(($(date +%s) - start)) s"
