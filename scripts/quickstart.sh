#!/usr/bin/env bash
# The main job: install what is missing, build, and run the default experiment, a
# comparison of seven optimizers on two spirals (or the experiment file given, with
# any further backplane run options).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --main
experiment=${1:-experiments/compare_optimizers_spirals.yaml}
shift || true
exec build/bin/backplane run "$experiment" "$@"
