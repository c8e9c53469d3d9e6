#!/usr/bin/env bash
# bench/run-peer.sh [run.mjs options]: the peer harness (onnxruntime-web MatMulNBits in
# headless Chromium) with our q4 kernels side by side, through its --extra hook.
#
# The harness serves the --extra module's folder, so this copies bench/peer-extra.mjs and
# writes the q4 kernels it runs (matvec_q4_subgroups.wgsl, matvec_q4.wgsl, matmul_q4.wgsl,
# matmul_q4_rows.wgsl) as the engine compiles them, each op's file with the shared files
# shaders.Source joins onto it (go run ./shaders/cmd/wgsl), into a temporary folder
# (removed afterwards) and points run.mjs there: the WGSL that is timed is the WGSL in
# shaders/, with no committed copy to drift. Options go to run.mjs unchanged
# (--quick, --shapes 4096x4096, --ms 1,32, --out FILE, ...). PEER is the harness folder.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
peer=${PEER:-/tmp/peer}
if [ ! -f "$peer/run.mjs" ] || [ ! -d "$peer/node_modules" ]; then
  echo "run-peer.sh: no peer harness with node_modules at $peer; set it up with:" >&2
  echo "  cp -r /work/shared/peer /tmp/peer && (cd /tmp/peer && npm ci)" >&2
  exit 2
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/cogvlm-peer-extra.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cp "$repo/bench/peer-extra.mjs" "$dir/"
(cd "$repo" && go run ./shaders/cmd/wgsl -o "$dir" matvec_q4.wgsl matvec_q4_subgroups.wgsl \
  matmul_q4.wgsl matmul_q4_rows.wgsl)
node "$peer/run.mjs" --extra "$dir/peer-extra.mjs" "$@"
