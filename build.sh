#!/usr/bin/env bash
# ./build.sh          build web/cogvlm.wasm, web/wasm_exec.js and the demo package models/demo
# ./build.sh test     gofmt check, go vet (native and js/wasm), native tests, browser tests
#
# Browser tests run the js/wasm test binaries in headless Chromium with WebGPU on
# SwiftShader. When Chromium is missing and we run as root, Debian's `chromium` package is
# installed; otherwise the script says what to install. Under CI=true they never skip.
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD

step() { printf '\n== %s\n' "$*"; }

build_wasm() {
  step "build web/cogvlm.wasm"
  # -s -w drop the symbol table and DWARF: the page downloads this file.
  GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o web/cogvlm.wasm ./wasm
  cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" web/wasm_exec.js
  cp wasm/engine/replay.js web/cogvlm-replay.js
  ls -l web/cogvlm.wasm | awk '{printf "web/cogvlm.wasm: %.1f MB\n", $5/1e6}'
}

# The app's embedded default: the tiny random-weights demo model, converted (q4) into
# models/demo/, so that `./build.sh && go run ./server` works at once. demo-model writes the
# same bytes every time, so rebuilding costs a second and never leaves a stale package.
build_demo() {
  step "build models/demo (the demo package, random weights)"
  go build -o .bin/cogvlm ./cmd/cogvlm
  rm -rf .bin/demo-hf
  mkdir -p models
  .bin/cogvlm demo-model --out .bin/demo-hf
  .bin/cogvlm convert --force --in .bin/demo-hf --out models/demo --quant q4
  rm -rf .bin/demo-hf
}

find_chromium() {
  if [ -n "${CHROMIUM:-}" ]; then echo "$CHROMIUM"; return 0; fi
  for c in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}

ensure_chromium() {
  if find_chromium >/dev/null; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing Debian's chromium (for the browser tests)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    find_chromium >/dev/null && return 0
  fi
  cat >&2 <<MSG
The browser tests need Chromium with WebGPU (SwiftShader), which is not installed.
Install it with:   sudo apt-get install chromium      (Debian/Ubuntu)
or point to a binary with CHROMIUM=/path/to/chromium.
MSG
  return 1
}

# The browser tests load converted packages of the golden model (served by the test runner
# under /repo/.bin/testpkg/), with the CPU reference's answers beside them.
make_test_packages() {
  mkdir -p .bin/testpkg
  go build -o .bin/cogvlm ./cmd/cogvlm
  for q in f32 q4 q8; do
    .bin/cogvlm convert --force --in testdata/golden/tiny-chat/model --out .bin/testpkg/tiny-$q --quant $q
  done
  .bin/cogvlm generate --model .bin/testpkg/tiny-q4 --query "The quick brown fox" --template base \
    --temperature 0 --max-new-tokens 12 --json | tail -n 1 > .bin/testpkg/tiny-q4.text.json
  .bin/cogvlm generate --model .bin/testpkg/tiny-q4 --image testdata/golden/tiny-chat/image.png \
    --query "What is in this image?" --template chat --temperature 0 --max-new-tokens 12 --json \
    | tail -n 1 > .bin/testpkg/tiny-q4.image.json
  .bin/cogvlm generate --model .bin/testpkg/tiny-q8 --image testdata/golden/tiny-chat/image.png \
    --query "What is in this image?" --template chat --temperature 0 --max-new-tokens 12 --json \
    | tail -n 1 > .bin/testpkg/tiny-q8.image.json
  .bin/cogvlm generate --model .bin/testpkg/tiny-f32 --query "The quick brown fox" --template base \
    --temperature 0.9 --top-k 40 --top-p 0.95 --repetition-penalty 1.1 --seed 7 --max-new-tokens 12 \
    --json | tail -n 1 > .bin/testpkg/tiny-f32.sampled.json
  .bin/cogvlm generate --model .bin/testpkg/tiny-f32 --query "The quick brown fox" --template base \
    --temperature 0.9 --top-k 40 --top-p 0.95 --seed 7 --max-new-tokens 12 \
    --json | tail -n 1 > .bin/testpkg/tiny-f32.topk.json
  make_random_config_packages
}

# The GPU property test's packages (wasm/engine/configs_test.go): checkpoints of randomly
# drawn small configs (internal/cmd/randmodel: hidden sizes no multiple of 64, odd head
# counts, a vision width other than the language model's, …), converted to q4 where every
# size allows, else f32, with the CPU reference's greedy tokens for a text and an image
# prompt. RANDOM_CONFIG_SEEDS draws others, e.g. RANDOM_CONFIG_SEEDS="$RANDOM $RANDOM".
# The fixed set: f32 — an odd LM head count with head_dim ≡ 2 (mod 4) and a hidden size no
# multiple of 4 (1), odd vision head dims and a vision width above the LM's (1, 7, 12), one
# patch (12); q4 — head_dim ≡ 2 (mod 4) (3, 8), q4 groups of 8–24, 3 layers (3, 8), an odd
# head count and one patch (5).
random_config_seeds=${RANDOM_CONFIG_SEEDS:-1 3 5 7 8 12}
make_random_config_packages() {
  local dir=.bin/testpkg/random seed encodings q
  rm -rf "$dir"
  mkdir -p "$dir"
  go build -o .bin/randmodel ./internal/cmd/randmodel
  for seed in $random_config_seeds; do
    encodings=$(.bin/randmodel --seed "$seed" --tokenizer testdata/golden/tiny-chat/model --out "$dir/$seed-hf")
    for q in $encodings; do
      .bin/cogvlm convert --force --in "$dir/$seed-hf" --out "$dir/$seed-$q" --quant "$q" >/dev/null
      .bin/cogvlm generate --model "$dir/$seed-$q" --query "The quick brown fox" --template base \
        --temperature 0 --max-new-tokens 8 --json | tail -n 1 > "$dir/$seed-$q.text.json"
      .bin/cogvlm generate --model "$dir/$seed-$q" --image testdata/golden/tiny-chat/image.png \
        --query "What is in this image?" --template chat --temperature 0 --max-new-tokens 8 --json \
        | tail -n 1 > "$dir/$seed-$q.image.json"
      echo "$seed-$q" >> "$dir/packages.txt"
    done
    rm -rf "$dir/$seed-hf"
  done
}

run_tests() {
  step "gofmt"
  unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
  if [ -n "$unformatted" ]; then echo "gofmt needed on:"; echo "$unformatted"; exit 1; fi

  step "go vet (native)"
  go vet ./...
  step "go vet (js/wasm)"
  GOOS=js GOARCH=wasm go vet ./wasm/... ./shaders/... ./model/...

  build_wasm

  browser=1
  if ! ensure_chromium; then
    if [ "${CI:-}" = true ]; then echo "CI=true: the browser tests must run" >&2; exit 1; fi
    if [ "${SKIP_BROWSER:-}" != 1 ]; then echo "(set SKIP_BROWSER=1 to run only the native tests)" >&2; exit 1; fi
    browser=0
  fi
  export CHROMIUM=${CHROMIUM:-$(find_chromium || true)}

  build_demo
  step "native tests"
  go test -timeout 20m ./...

  if [ "$browser" = 1 ]; then
    step "browser tests (headless Chromium, WebGPU on SwiftShader)"
    go build -o .bin/go_js_wasm_exec ./internal/cmd/wasmexec
    make_test_packages
    WASMEXEC_SCRIPTS=wasm/engine/replay.js \
      GOOS=js GOARCH=wasm go test -timeout 20m -exec "$root/.bin/go_js_wasm_exec" ./wasm/...
  else
    echo "browser tests SKIPPED (SKIP_BROWSER=1)"
  fi
  step "all tests passed"
}

case "${1:-build}" in
  build) build_wasm; build_demo ;;
  test) run_tests ;;
  *) echo "usage: ./build.sh [build|test]" >&2; exit 2 ;;
esac
