#!/usr/bin/env bash
# bench/device.sh pack|run|local: the engine on a real GPU, in one prepared device call.
#
#   pack   (here) fills .gpu-node/ (git-ignored): Node + Dawn + the Vulkan loader
#          (/work/shared/gpu-node/pack-device.sh), the js/wasm test binaries of wasm/kernels
#          and wasm/engine (xz'd) and the test packages (.bin/testpkg, made by ./build.sh test; of
#          the random configs only DEVICE_RANDOM_CONFIGS, default "5-q4 8-q4"). About 60 MB;
#          pack fails past the device tool's 64 MiB carry.
#   run    (on the GPU machine: the device tool's `run` with carry [".gpu-node"] and the
#          command `bash bench/device.sh run`) runs, each step under its own timeout, with
#          the output in $OUT: every kernel and engine test on the GPU (kernel-tests.txt,
#          engine-tests.txt), the kernel
#          benchmark at CogVLM's sizes (kernelbench.txt: the copy roofline and the q4 matvec's
#          share of it, target ≥ 0.70 at 4096×11008; f16 and f32 q4 rows side by side), and
#          the model benchmark at real sizes on each path (modelbench-f16.txt, modelbench-f32.txt).
#   local [swiftshader|lavapipe]  (here) the same run on SwiftShader (the default) or on
#          lavapipe (which has shader-f16, so both paths run as on a GPU) through Dawn for
#          Node, to check the script before spending device time on it (OUT defaults to
#          test-output/device).
#
# internal/gpunode/host.cjs makes Node look like the test page to the engine (the repository
# served under /repo/, where the tests import web/cogvlm-replay.js), as in ./build.sh's
# tests on lavapipe.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
shared=${GPU_NODE_SRC:-/work/shared/gpu-node}

test_run() { # test_run BINARY SECONDS NAME ARGS...: .gpu-node/BINARY.wasm under Dawn, output to $OUT/NAME.txt
  local bin=$1 secs=$2 name=$3
  shift 3
  echo "== $name"
  NODE_OPTIONS="--require $repo/internal/gpunode/host.cjs" timeout "$secs" \
    "$GPU_NODE/go_js_wasm_webgpu_exec" ".gpu-node/$bin.wasm" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  grep -E '^(--- FAIL|FAIL|PASS|ok)|adapter|roofline|share of the copy|f16 takes|cosine|model benchmark|decoder layer' "$OUT/$name.txt" | head -40
  echo "$name: exit $rc"
}

# The f16 and f32 paths side by side where the adapter has shader-f16: the engine tests run
# on the f16 path (TestF16Error and TestF16Golden compare it with the f32 path in the same
# process), the kernel benchmark times every q4 product on both (rows "… f16" beside the
# f32 rows, and a line per pair with the ratio), and the model benchmark runs once per path
# (-nof16 keeps the f32 kernels). Without shader-f16 the f16 rows and tests are skipped
# and modelbench-f16.txt repeats the f32 path.
run_all() {
  mkdir -p .bin && rm -rf .bin/testpkg && tar -C .bin -xJf .gpu-node/testpkg.tar.xz
  for b in kernels engine; do [ -f .gpu-node/$b.wasm ] || xz -dk .gpu-node/$b.wasm.xz; done
  test_run kernels 100 kernel-tests -test.v -test.timeout 90s
  test_run engine 150 engine-tests -test.v -test.timeout 140s
  test_run kernels 180 kernelbench -test.run '^TestKernelBench$' -test.v -test.timeout 170s -kernelbench
  test_run engine 80 modelbench-f16 -test.run '^TestModelBench$' -test.v -test.timeout 75s -modelbench
  test_run engine 80 modelbench-f32 -test.run '^TestModelBench$' -test.v -test.timeout 75s -modelbench -nof16
}

case "${1:-}" in
pack)
  [ -d .bin/testpkg ] || { echo "no .bin/testpkg: run ./build.sh test first" >&2; exit 1; }
  bash "$shared/pack-device.sh" .gpu-node || exit 1
  GOOS=js GOARCH=wasm go test -c -o .gpu-node/kernels.wasm ./wasm/kernels || exit 1
  GOOS=js GOARCH=wasm go test -c -o .gpu-node/engine.wasm ./wasm/engine || exit 1
  xz -T2 -6 -f .gpu-node/kernels.wasm .gpu-node/engine.wasm || exit 1
  # The device tool carries at most 64 MiB, and random weights hardly compress: of the
  # random-config packages (TestRandomConfigs) only DEVICE_RANDOM_CONFIGS go, the q4 ones
  # (they take the f16 kernels) by default.
  stage=$(mktemp -d) && trap 'rm -rf "$stage"' EXIT
  cp -r .bin/testpkg "$stage/"
  rm -rf "$stage/testpkg/random"/*
  for c in ${DEVICE_RANDOM_CONFIGS:-5-q4 8-q4}; do
    grep -qx "$c" .bin/testpkg/random/packages.txt || { echo "DEVICE_RANDOM_CONFIGS: no $c in .bin/testpkg/random/packages.txt" >&2; exit 1; }
    cp -r .bin/testpkg/random/"$c" .bin/testpkg/random/"$c".*.json "$stage/testpkg/random/"
    echo "$c" >> "$stage/testpkg/random/packages.txt"
  done
  tar -C "$stage" -cJf .gpu-node/testpkg.tar.xz testpkg
  du -sh .gpu-node
  bytes=$(du -sb .gpu-node | cut -f1)
  if [ "$bytes" -gt $((64 << 20)) ]; then
    echo ".gpu-node has $bytes bytes, more than the device tool's 64 MiB carry: set DEVICE_RANDOM_CONFIGS to fewer packages" >&2
    exit 1
  fi
  ;;
run)
  : "${OUT:?run it through the device tool, which sets OUT}"
  source .gpu-node/setup.sh
  if [ -z "${VK_ICD_FILENAMES:-}" ]; then
    ls /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d 2>&1
    ldconfig -p | grep -i vulkan
  fi
  run_all
  ;;
local)
  OUT=${OUT:-test-output/device}
  mkdir -p "$OUT"
  source .gpu-node/setup.sh
  case "${2:-swiftshader}" in
  swiftshader)
    export VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
    export LD_LIBRARY_PATH="/usr/lib/chromium:$LD_LIBRARY_PATH"
    ;;
  lavapipe) # shader-f16: both paths, as on a GPU
    export VK_ICD_FILENAMES=${LAVAPIPE_ICD:-/usr/share/vulkan/icd.d/lvp_icd.json}
    ;;
  *) echo "usage: bench/device.sh local [swiftshader|lavapipe]" >&2; exit 2 ;;
  esac
  run_all
  ;;
*)
  echo "usage: bench/device.sh pack|run|local" >&2
  exit 2
  ;;
esac
