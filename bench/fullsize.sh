#!/usr/bin/env bash
# bench/fullsize.sh [--preset NAME] [--layers N] [--vision-layers N] [--tokens N] [--image FILE] [--work DIR] [--keep]
#
# The full-size rehearsal: demo-model → convert (q4) → the server → the real page in headless
# Chromium (WebGPU on SwiftShader) loads the package through the JS API, answers a text
# question (and an image question with --image) whose token ids must equal `cogvlm generate`
# on the same package, reloads it with the server stopped, and deletes the stored copy.
# Progress goes to stderr; the last line of stdout is one JSON object with the figures and
# "tokens_equal" / "offline_equal". Exit status 1 when either is false or a step fails.
#
# Disk: the checkpoint (bf16), the package (q4) and the browser's stored copy of it at once;
# at full depth about 35 + 10 + 10 GB (the checkpoint is deleted after the conversion unless
# --work or --keep is given). See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "bench/fullsize.sh: Chromium is missing: run ./build.sh test once (it installs it) or set CHROMIUM" >&2
  exit 1
fi
exec go run ./bench/fullsize "$@"
