#!/usr/bin/env bash
# Builds the example plugin out of tree and trains with it, as docs/writing-plugins.md says.
# Usage: example_plugin.sh BACKPLANE_BINARY EXAMPLE_DIR
set -euo pipefail
bp=$1 example=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$example"/. "$work"
sdk=$(cd "$example/../.." && pwd)
cmake -S "$work" -B "$work/build" -DBACKPLANE_SDK_DIR="$sdk" >/dev/null
cmake --build "$work/build" >/dev/null
"$bp" run "$work/swish-spirals.yaml" --out "$work/run" --quiet
acc=$(sed -n 's/.*"train_accuracy": \([0-9.]*\).*/\1/p' "$work/run/summary.json")
echo "swish-spirals train accuracy: $acc"
grep -q 'swish' "$work/run/config.yaml"
awk -v a="$acc" 'BEGIN { exit !(a >= 0.99) }'
