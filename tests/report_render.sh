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

# A tuned suite's report: the ranking, the profile with a line per variant; its first
# workload's report with the interval chart, the trials tables and a chart per searched key.
cat >"$work/suite.yaml" <<EOF
seeds: [1, 2]
tuning: { trials: 2 }
variants:
  adam: { optimizer: { name: adam, lr: { log_uniform: [0.001, 0.03] } } }
  momentum: { optimizer: { name: sgd, lr: { log_uniform: [0.01, 0.3] }, momentum: 0.9 } }
workloads:
  spirals: { experiment: $(realpath "$src")/experiments/spirals.yaml, target: { metric: val_accuracy, value: 0.9 }, epochs: 20 }
  turns: { experiment: $(realpath "$src")/experiments/spirals.yaml, set: [data.turns=1], target: { metric: val_accuracy, value: 0.95 }, epochs: 20 }
EOF
"$bp" run "$work/suite.yaml" --out "$work/suite" --quiet
"${browser[@]}" --dump-dom "file://$work/suite/report.html" 2>/dev/null >"$work/suite-dom.html"
for variant in adam momentum; do
  grep -q "class=\"line\" data-series=\"$variant (area " "$work/suite-dom.html" || fail "$variant has no line in the rendered profile"
  grep -q "<td>$variant</td>" "$work/suite-dom.html" || fail "$variant has no row in the rendered ranking"
done
"${browser[@]}" --dump-dom "file://$work/suite/spirals/report.html" 2>/dev/null >"$work/workload-dom.html"
grep -q 'id="final_accuracy_ci"' "$work/workload-dom.html" || fail "the workload's report has no interval chart"
[ "$(grep -o '<table class="trials">' "$work/workload-dom.html" | wc -l)" -eq 2 ] || fail "the workload's report has not two trials tables"
[ "$(grep -o 'class="point" data-series="adam"' "$work/workload-dom.html" | wc -l)" -eq 2 ] || fail "adam's trials are not 2 points"
"${browser[@]}" --window-size=1200,1400 --screenshot="$work/suite.png" "file://$work/suite/report.html" >/dev/null 2>&1
[ "$(stat -c %s "$work/suite.png")" -gt 20000 ] || fail "the suite's screenshot is (nearly) empty"
echo "report.html rendered in Chromium: 7 variants, 4 charts each, table and screenshot; a suite's and its workload's"
