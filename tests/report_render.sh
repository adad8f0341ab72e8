#!/usr/bin/env bash
# report.html as a person sees it: a small optimizer comparison rendered by headless
# Chromium (Debian's chromium, which scripts/test.sh installs). The rendered DOM must
# hold the table and, in each of the four charts, one line per variant; a screenshot
# must come out.
# Usage: report_render.sh BACKPLANE_BINARY SOURCE_DIR
set -euo pipefail
bp=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
command -v chromium >/dev/null || fail "chromium is not installed (scripts/test.sh installs it)"

"$bp" run "$src/experiments/compare_optimizers_spirals.yaml" --out "$work/cmp" --quiet \
  --set train.epochs=8 --set 'compare.seeds=[1, 2]'
browser=(chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile")
"${browser[@]}" --dump-dom "file://$work/cmp/report.html" 2>/dev/null >"$work/dom.html"
for variant in sgd momentum adagrad rmsprop adam adamw lion; do
  n=$(grep -o "class=\"line\" data-series=\"$variant\"" "$work/dom.html" | wc -l)
  [ "$n" -eq 4 ] || fail "$variant has $n lines in the rendered report, expected 4 (one per chart)"
  grep -q "<td>$variant</td>" "$work/dom.html" || fail "$variant has no row in the rendered table"
done
"${browser[@]}" --window-size=1200,1800 --screenshot="$work/report.png" "file://$work/cmp/report.html" >/dev/null 2>&1
[ "$(stat -c %s "$work/report.png")" -gt 20000 ] || fail "the screenshot is (nearly) empty"
echo "report.html rendered in Chromium: 7 variants, 4 charts each, table and screenshot"
