#!/usr/bin/env bash
# Installs what is missing, then configures and builds into build/ (incrementally,
# through ccache when it is there). `--main` builds only the command and its plugins
# (what the quick start needs), not the tests. Other arguments go to cmake's
# configure step, e.g. -DBACKPLANE_BLAS=eigen.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=()
configure=()
for arg in "$@"; do
  if [ "$arg" = --main ]; then targets=(--target backplane); else configure+=("$arg"); fi
done
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${configure[@]}" >/dev/null
cmake --build build --parallel "$(nproc)" "${targets[@]}"
