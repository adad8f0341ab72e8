#!/usr/bin/env bash
# Installs what is missing, then configures and builds into build/ (incrementally,
# through ccache when it is there). Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build --parallel "$(nproc)"
