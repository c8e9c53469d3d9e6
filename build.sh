#!/usr/bin/env bash
# ./build.sh          build web/cogvlm.wasm, web/wasm_exec.js and the demo package models/demo
# ./build.sh test     gofmt check, go vet (native and js/wasm), native tests, browser tests
#                     on both WebGPU implementations (Chromium/SwiftShader, Dawn/lavapipe)
# ./build.sh test-lavapipe   only the js/wasm tests under Dawn for Node on lavapipe
#
# The js/wasm test binaries (kernels against their CPU twins, golden tokens, packages, debug
# mode) run twice, each in its own step that first prints the adapter and its features:
#  1. in headless Chromium with WebGPU on SwiftShader (internal/cmd/wasmexec);
#  2. under Dawn for Node (npm `webgpu`, pinned in internal/gpunode/package-lock.json,
#     installed into .bin/gpu-node) on Mesa's lavapipe, a second, independent WebGPU
#     implementation: another shader compiler, subgroup size 8, shader-f16.
# What they need and is missing is installed when we run as root with apt (Debian's
# `chromium`; `nodejs npm`; Mesa ≥ 24 `mesa-vulkan-drivers`, from bookworm-backports on
# bookworm); otherwise the script says what to install. Under CI=true neither step skips.
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD

step() { printf '\n== %s\n' "$*"; }

build_wasm() {
  step "build web/cogvlm.wasm"
  # -s -w drop the symbol table and DWARF: the page downloads this file.
  GOOS=js GOARCH=wasm go build -trimpath -tags cogvlm_release -ldflags="-s -w" -o web/cogvlm.wasm ./wasm
  # The converter of "Get a model" (web/convert.js): a program of its own, so that the
  # engine's download does not grow.
  GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o web/convert.wasm ./wasm/convert
  cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" web/wasm_exec.js
  ls -l web/cogvlm.wasm web/convert.wasm | awk '{printf "%s: %.1f MB\n", $9, $5/1e6}'
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

# lavapipe_icd prints the Vulkan driver manifest of Mesa's lavapipe (LAVAPIPE_ICD overrides).
lavapipe_icd() {
  local j
  for j in ${LAVAPIPE_ICD:-} /usr/share/vulkan/icd.d/lvp_icd.json /usr/share/vulkan/icd.d/lvp_icd.x86_64.json; do
    if [ -f "$j" ]; then echo "$j"; return 0; fi
  done
  return 1
}

# Dawn refuses the lavapipe of Mesa 22 (Debian bookworm's own); Mesa 25 works.
lavapipe_recent() {
  local v
  [ -n "${LAVAPIPE_ICD:-}" ] && return 0 # the caller's choice
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null) || return 1
  dpkg --compare-versions "$v" ge 24
}

# ensure_lavapipe installs what the Dawn-for-Node step needs and is missing: Node and npm,
# Mesa's lavapipe, and the pinned npm package `webgpu` in .bin/gpu-node (with the runner,
# internal/gpunode/, copied beside it).
ensure_lavapipe() {
  local root_apt=0 node=() mesa=()
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && root_apt=1
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || node=(nodejs npm)
  if ! lavapipe_icd >/dev/null || ! lavapipe_recent; then
    mesa=(mesa-vulkan-drivers libvulkan1)
    if [ "$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")" = bookworm ]; then
      mesa=(-t bookworm-backports "${mesa[@]}")
    fi
  fi
  if [ ${#node[@]} -gt 0 ] || [ ${#mesa[@]} -gt 0 ]; then
    if [ "$root_apt" = 0 ]; then
      cat >&2 <<MSG
The Dawn-for-Node tests need Node with npm and Mesa ≥ 24's lavapipe Vulkan driver.
Install them with:   sudo apt-get install nodejs npm mesa-vulkan-drivers
(on Debian bookworm: enable bookworm-backports and add -t bookworm-backports), or point
LAVAPIPE_ICD at a lavapipe lvp_icd.json.
MSG
      return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [ "${mesa[0]:-}" = -t ] && ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      step "enabling bookworm-backports (Mesa 25's lavapipe)"
      echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list
    fi
    step "installing ${node[*]} ${mesa[*]} (for the Dawn-for-Node tests)"
    apt-get update -qq || return 1
    if [ ${#node[@]} -gt 0 ]; then apt-get install -y -qq "${node[@]}" >/dev/null || return 1; fi
    if [ ${#mesa[@]} -gt 0 ]; then apt-get install -y -qq "${mesa[@]}" >/dev/null || return 1; fi
    lavapipe_icd >/dev/null && lavapipe_recent || { echo "lavapipe is still missing or older than Mesa 24" >&2; return 1; }
  fi
  mkdir -p .bin/gpu-node
  if ! cmp -s internal/gpunode/package-lock.json .bin/gpu-node/package-lock.json || [ ! -d .bin/gpu-node/node_modules/webgpu ]; then
    step "installing the npm package webgpu (Dawn for Node) into .bin/gpu-node"
    cp internal/gpunode/package.json internal/gpunode/package-lock.json .bin/gpu-node/
    # --ignore-scripts: webgpu's only install script clears a macOS quarantine flag.
    (cd .bin/gpu-node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || return 1
  fi
  cp internal/gpunode/runwasm.cjs internal/gpunode/host.cjs internal/gpunode/go_js_wasm_webgpu_exec .bin/gpu-node/
}

# wasm_tests RUNNER [REQUIRED_FEATURES]: the adapter the runner gives (TestAdapter fails
# when a required feature is not granted), then every js/wasm test with that runner.
wasm_tests() {
  local runner=$1
  COGVLM_REQUIRE_FEATURES=${2:-} GOOS=js GOARCH=wasm go test -count=1 -v -run '^TestAdapter$' -exec "$runner" ./wasm/gpu
  GOOS=js GOARCH=wasm go test -timeout 20m -exec "$runner" ./wasm/...
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
  lavapipe=1
  if ! ensure_lavapipe; then
    if [ "${CI:-}" = true ]; then echo "CI=true: the Dawn-for-Node tests on lavapipe must run" >&2; exit 1; fi
    if [ "${SKIP_LAVAPIPE:-}" != 1 ]; then echo "(set SKIP_LAVAPIPE=1 to skip the tests on lavapipe)" >&2; exit 1; fi
    lavapipe=0
  fi

  build_demo
  step "native tests"
  go test -timeout 20m ./...

  if [ "$browser" = 1 ]; then
    step "browser tests (headless Chromium, WebGPU on SwiftShader)"
    go build -o .bin/go_js_wasm_exec ./internal/cmd/wasmexec
    make_test_packages
    # SwiftShader's subgroups are 4 wide, lavapipe's 8: each step requires them, so the
    # subgroup kernels are checked at both widths.
    wasm_tests "$root/.bin/go_js_wasm_exec" subgroups
  else
    echo "browser tests SKIPPED (SKIP_BROWSER=1)"
  fi
  if [ "$lavapipe" = 1 ]; then
    [ "$browser" = 1 ] || make_test_packages
    lavapipe_tests
  else
    echo "Dawn-for-Node tests on lavapipe SKIPPED (SKIP_LAVAPIPE=1)"
  fi
  step "all tests passed"
}

# lavapipe_tests: the js/wasm tests again under Dawn for Node on lavapipe, which must grant
# shader-f16 and subgroups (their absence means a broken install, not a smaller adapter).
lavapipe_tests() {
  step "js/wasm tests (Dawn for Node, WebGPU on Mesa lavapipe)"
  local -x VK_ICD_FILENAMES
  VK_ICD_FILENAMES=$(lavapipe_icd)
  echo "Vulkan driver: $VK_ICD_FILENAMES; node $(node --version)"
  wasm_tests "$root/.bin/gpu-node/go_js_wasm_webgpu_exec" shader-f16,subgroups
}

case "${1:-build}" in
  build) build_wasm; build_demo ;;
  test) run_tests ;;
  test-lavapipe)
    ensure_lavapipe || exit 1
    make_test_packages
    lavapipe_tests
    ;;
  *) echo "usage: ./build.sh [build|test|test-lavapipe]" >&2; exit 2 ;;
esac
