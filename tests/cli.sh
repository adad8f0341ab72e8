#!/usr/bin/env bash
# The CLI as a user meets it: every bad input is one line on stderr and a
# non-zero exit status (never a signal); good input writes the run's files.
# Usage: cli.sh BACKPLANE_BINARY SOURCE_DIR BROKEN_PLUGIN_DIR
set -u
bp=$1 src=$2 broken=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 passed=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect STATUS REGEX -- command...: exit status, and the regex on stderr, which
# must be exactly one line when STATUS is not 0.
expect() {
  local want=$1 pattern=$2; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  local lines; lines=$(wc -l <"$tmp/err")
  if [ "$got" -ne "$want" ]; then
    fail "$* -> exit $got, expected $want"; cat "$tmp/err"; return
  fi
  if [ "$want" -ne 0 ] && [ "$lines" -ne 1 ]; then
    fail "$* -> $lines lines on stderr, expected one"; cat "$tmp/err"; return
  fi
  if ! grep -Eq -- "$pattern" "$tmp/err" "$tmp/out"; then
    fail "$* -> output does not match '$pattern'"; cat "$tmp/err" "$tmp/out"; return
  fi
  passed=$((passed + 1))
}

yaml() { cat >"$tmp/$1"; echo "$tmp/$1"; }

expect 0 'run.*validate.*plugins|plugins' -- "$bp" --help
expect 0 '--set' -- "$bp" run --help
expect 2 'subcommand' -- "$bp"
expect 2 'file is required' -- "$bp" run
expect 0 'layer dense' -- "$bp" plugins
for name in dense identity relu leaky_relu sigmoid tanh gelu softmax mse softmax_cross_entropy \
            binary_cross_entropy sgd adam xor two_spirals sine csv; do
  grep -Eq "^[a-z]+ $name\$" "$tmp/out" || fail "backplane plugins does not list $name"
done
for param in units activation init distribution momentum nesterov weight_decay beta1 beta2 samples noise; do
  grep -Eq "^      $param " "$tmp/out" || fail "backplane plugins does not show parameter $param"
done
# docs/experiments.md documents every component and parameter that is built in.
for name in $(awk '/^[a-z]+ [a-z0-9_]+$/ {print $2} /^      [a-z0-9_]+ / {print $1}' "$tmp/out" | sort -u); do
  grep -q "\`$name\`" "$src/docs/experiments.md" || fail "docs/experiments.md does not mention \`$name\`"
done
expect 0 'optimizer sgd' -- "$bp" plugins --kind optimizer
expect 2 'kind' -- "$bp" plugins --kind nonsense

expect 1 'missing.yaml: cannot open' -- "$bp" run "$tmp/missing.yaml"
f=$(yaml syntax.yaml <<<'name: x
model: [dense')
expect 1 'syntax.yaml:3:1: YAML syntax error' -- "$bp" validate "$f"
f=$(yaml unknown.yaml <<<'data: { source: xor }
model: [ conv9d ]
loss: mse
optimizer: sgd')
expect 1 "unknown.yaml:2:10: unknown layer 'conv9d'.*known layers: add, avg_pool2d, batch_norm, concat, conv2d, dense, dropout, embedding, flatten, global_avg_pool, gru, layer_norm, lstm, max_pool2d, multi_head_attention, multiply, positional_embedding" -- "$bp" validate "$f"
expect 1 "--set train.epochs=x: train.epochs must be an integer" -- \
  "$bp" validate "$src/experiments/xor.yaml" --set train.epochs=x
expect 1 "model must output 1 value" -- "$bp" validate "$src/experiments/xor.yaml" --set model.1.units=3
expect 0 'ok' -- "$bp" validate "$src/experiments/spirals.yaml"
# A value inside a --set mapping, and a swept value, are placed where they came from.
expect 1 "^backplane: error: --set optimizer=\\{name: adam, lr: -1\\}: optimizer \\(adam\\).lr = -1 is out of range" -- \
  "$bp" validate "$src/experiments/spirals.yaml" --set 'optimizer={name: adam, lr: -1}'
swept=$(yaml swept.yaml <<'EOF2'
name: swept
data: { source: xor }
model: [ { dense: { units: 1 } } ]
loss: mse
optimizer: { name: sgd, lr: 0.1 }
compare:
  variants:
    mom: { optimizer: { momentum: { sweep: linear, from: 0.5, to: 1.5, points: 3 } } }
EOF2
)
expect 1 "swept.yaml:8:.* \\(optimizer.momentum swept to 1.5\\): optimizer \\(sgd\\).momentum = 1.5 is out of range .*\\(in compare variant 'mom'\\)" -- \
  "$bp" validate "$swept"
expect 1 "--set model.0x.units=8: '0x' indexes a list: use a number" -- \
  "$bp" validate "$src/experiments/spirals.yaml" --set model.0x.units=8
expect 1 "--set name=a/b: name 'a/b' holds a slash: it names the runs' folder" -- \
  "$bp" validate "$src/experiments/spirals.yaml" --set name=a/b
expect 1 "variant name 'report.html' is the name of a file the comparison writes" -- \
  "$bp" validate "$swept" --set 'compare.variants={report.html: {}}'
# Options that cannot go together, or do not suit the file, are a bad command line (exit 2).
expect 2 '--out excludes --resume' -- "$bp" run "$src/experiments/xor.yaml" --resume "$tmp/none" --out "$tmp/none2"
expect 2 "--overwrite requires --out \\(see 'backplane run --help'\\)" -- "$bp" run "$src/experiments/xor.yaml" --overwrite
expect 2 '--jobs trains the runs of a comparison at once' -- "$bp" run "$src/experiments/xor.yaml" --jobs 2
expect 2 "--profile times the steps of one run, alone on the machine; .*profile one of its experiments" -- \
  "$bp" run "$src/experiments/compare_optimizers_spirals.yaml" --profile
expect 0 "profile of 15 steps \(the run's first left out\)" -- \
  "$bp" run "$src/experiments/xor.yaml" --profile --set train.epochs=2 --out "$tmp/profiled"
grep -q '^  shards (parallel)' "$tmp/out" && grep -q '^  0.dense' "$tmp/out" || fail "--profile printed no phases or entries"
[ "$(wc -l <"$tmp/profiled/timeline.csv")" -eq 17 ] || fail "--profile's timeline.csv has no row for each of 16 steps"
# --out is never followed through a link (an --overwrite there would remove elsewhere).
mkdir -p "$tmp/real-out" && ln -s "$tmp/real-out" "$tmp/link-out"
expect 1 "--out $tmp/link-out is a link; give the folder it points to" -- "$bp" run "$src/experiments/xor.yaml" --out "$tmp/link-out"
# --set takes one value per flag, so the file may come after it.
expect 0 'ok' -- "$bp" validate --set train.epochs=2 --set seed=5 "$src/experiments/spirals.yaml"

expect 0 'wrote a loss plugin project' -- "$bp" new-plugin my_loss --kind loss --dir "$tmp/new-loss"
expect 0 'wrote an activation plugin project' -- "$bp" new-plugin my_act --kind activation --dir "$tmp/new-act"

# A stale library or entry on BACKPLANE_PLUGIN_PATH is skipped with a warning; the
# rest works, and a component it might have held is named with the reason.
mkdir -p "$tmp/plugins"
echo 'not a library' >"$tmp/plugins/libjunk.so"
BACKPLANE_PLUGIN_PATH="$tmp/plugins" expect 0 'warning: plugin .*libjunk.so: not a loadable shared library' -- "$bp" plugins
grep -q '^layer dense$' "$tmp/out" || fail "plugins with a stale library on the path lists nothing"
BACKPLANE_PLUGIN_PATH="$tmp/nowhere" expect 0 'warning: BACKPLANE_PLUGIN_PATH names .*nowhere' -- "$bp" plugins
BACKPLANE_PLUGIN_PATH="$broken/wrong_abi" expect 0 'warning: .*built for ABI 999' -- "$bp" plugins
BACKPLANE_PLUGIN_PATH="$tmp/plugins" expect 0 'results in' -- "$bp" run "$src/experiments/xor.yaml" --out "$tmp/stale" --set train.epochs=1
f=$(yaml plugin-layer.yaml <<<'data: { source: xor }
model: [ my_norm ]
loss: mse
optimizer: sgd')
BACKPLANE_PLUGIN_PATH="$tmp/plugins" expect 1 "unknown layer 'my_norm'.*need its library in the experiment's plugins: list.*not loaded: plugin .*libjunk.so" -- "$bp" validate "$f"
# check-plugin: a wrong gradient and a state a checkpoint loses, each named.
expect 1 '2 of 2 components failed their checks: activation bad_tanh, optimizer forgetful_momentum' -- \
  "$bp" check-plugin "$broken/bad_gradient/libbad_gradient.so"
grep -q 'FAIL  gradients' "$tmp/out" || fail "check-plugin does not say the gradients failed"
grep -q 'FAIL  resume' "$tmp/out" || fail "check-plugin does not say resume failed"
# A check that cannot run is no pass: csv needs a file, given with --set.
datasets=$(dirname "$bp")/../lib/backplane/plugins/libbackplane-datasets.so
expect 1 '1 of 7 components failed their checks: dataset csv' -- "$bp" check-plugin "$datasets"
grep -q 'FAIL  data .*--set csv.KEY=VALUE' "$tmp/out" || fail "check-plugin does not say how to give csv data"
printf 'a,b,label\n0,1,0\n1,0,1\n' >"$tmp/check.csv"
expect 0 'all 7 components passed' -- "$bp" check-plugin "$datasets" --set "csv.path=$tmp/check.csv"
expect 1 "--set cvs.path=x: 'cvs' is not a dataset of .*\\(did you mean 'csv'\\?\\)" -- \
  "$bp" check-plugin "$datasets" --set cvs.path=x
expect 1 '--set csv.path=x: --set gives a dataset what it needs to load, and .* has no dataset' -- \
  "$bp" check-plugin "$(dirname "$datasets")/libbackplane-losses.so" --set csv.path=x
# Bugs that pass at the initial parameters, in one shard, or on one thread.
expect 1 '4 of 4 components failed their checks: layer gainless_norm, loss mean_loss, layer cached_scale, layer hidden_statistics' -- \
  "$bp" check-plugin "$broken/blind_spots/libblind_spots.so"
grep -q 'FAIL  isolation' "$tmp/out" || fail "check-plugin does not say the layer keeps a shard's data"

f=$(yaml with-plugin.yaml <<<"data: { source: xor }
plugins: [ $broken/duplicate ]
model: [ dense: {units: 2} ]
loss: softmax_cross_entropy
optimizer: sgd")
expect 1 "with-plugin.yaml:2:12: plugin .*libduplicate.so: activation 'relu' is already provided" -- "$bp" validate "$f"

expect 0 'results in' -- "$bp" run "$src/experiments/xor.yaml" --out "$tmp/run" --set train.epochs=2
for file in config.yaml metrics.csv summary.json; do
  [ -s "$tmp/run/$file" ] || fail "run did not write $file"
done
"$bp" run "$src/experiments/xor.yaml" --out "$tmp/quiet" --set train.epochs=2 --quiet >"$tmp/out" 2>&1
[ ! -s "$tmp/out" ] || fail "--quiet printed: $(cat "$tmp/out")"
# Not a terminal: one plain line per epoch, no carriage returns.
"$bp" run "$src/experiments/xor.yaml" --out "$tmp/plain" --set train.epochs=3 >"$tmp/out"
[ "$(grep -c '^epoch [0-9]/3 ' "$tmp/out")" -eq 3 ] || fail "expected 3 epoch lines: $(cat "$tmp/out")"
! grep -q $'\r' "$tmp/out" || fail "carriage returns in non-terminal output"
(cd "$tmp" && "$bp" run "$src/experiments/xor.yaml" --set train.epochs=1 -q) || fail "run without --out"
ls "$tmp"/runs/xor/*/summary.json >/dev/null 2>&1 || fail "no runs/xor/<timestamp>/summary.json"

# The command runs with glibc's malloc on 2 MiB pages (core/cli/main.cpp), added to
# the tunables it was given, unless they choose for themselves; summary.json says which ran.
tunables() {   # GLIBC_TUNABLES or "-" for none: the glibc_tunables the run's summary.json records
  rm -rf "$tmp/tunables"
  if [ "$1" = - ]; then env -u GLIBC_TUNABLES "$bp" run "$src/experiments/xor.yaml" --out "$tmp/tunables" --set train.epochs=1 -q
  else GLIBC_TUNABLES=$1 "$bp" run "$src/experiments/xor.yaml" --out "$tmp/tunables" --set train.epochs=1 -q; fi
  sed -n 's/.*"glibc_tunables": "\(.*\)".*/\1/p' "$tmp/tunables/summary.json"
}
for pair in "-|glibc.malloc.hugetlb=1" \
            "glibc.malloc.trim_threshold=1048576|glibc.malloc.trim_threshold=1048576:glibc.malloc.hugetlb=1" \
            "glibc.malloc.hugetlb=0|glibc.malloc.hugetlb=0"; do
  given=${pair%|*} expected=${pair#*|}
  got=$(tunables "$given")
  [ "$got" = "$expected" ] || fail "GLIBC_TUNABLES '$given': the run had '$got', expected '$expected'"
done

# A comparison whose runs failed says so in its exit status, after its table.
printf 'a,b,label\n0,1,0\n1,0,1\n0.5,0.5,0\n1,1,1\n' >"$tmp/tiny.csv"
failing=$(yaml failing.yaml <<EOF2
name: failing
data: { source: csv, path: $tmp/tiny.csv, label_column: 2, header: true }
model: [ { dense: { units: 2 } } ]
loss: softmax_cross_entropy
optimizer: { name: sgd, lr: 0.1 }
train: { epochs: 1, batch_size: 2 }
compare:
  variants:
    good: {}
    gone: { data: { path: $tmp/gone.csv } }
EOF2
)
expect 1 '^backplane: error: 1 of 2 runs failed \(gone seed 0\): the table leaves them out; their errors are in .*comparison.json' -- \
  "$bp" run "$failing" --out "$tmp/failing" -q
grep -q '"good"' "$tmp/failing/comparison.json" || fail "a failed comparison did not keep its good run"
expect 3 'diverged' -- "$bp" run "$src/experiments/xor.yaml" --out "$tmp/div" --set loss=mse \
  --set optimizer.lr=1000
grep -q '"status": "diverged"' "$tmp/div/summary.json" || fail "diverged run's summary"

# Suites: validated, run quick, refused with one line where they are wrong.
expect 0 'suite_optimizers.yaml: ok \(5 workloads x 5 variants\)' -- "$bp" validate "$src/experiments/suite_optimizers.yaml" --quick
expect 2 '^backplane: error: --quick runs a suite.s quick mode; .*xor.yaml is not a suite' -- \
  "$bp" run "$src/experiments/xor.yaml" --quick
expect 2 '^backplane: error: --quick runs a suite.s quick mode; .*xor.yaml is not a suite' -- \
  "$bp" validate "$src/experiments/xor.yaml" --quick
f=$(yaml suite.yaml <<EOF2
seeds: [1]
variants: { adam: {}, sgd: { optimizer: { name: sgd, lr: 0.1 } } }
workloads:
  xor: { experiment: $src/experiments/xor.yaml, target: { metric: train_accuracy, value: 0.9 }, epochs: 30 }
  spirals: { experiment: $src/experiments/spirals.yaml, target: { metric: val_accuracy, value: 0.9 }, epochs: 20 }
EOF2
)
expect 0 'rank  variant +profile area' -- "$bp" run "$f" --out "$tmp/suite"
[ -f "$tmp/suite/spirals/sgd/seed-1/summary.json" ] && [ -f "$tmp/suite/suite.json" ] || fail "the suite left no runs or no suite.json"
f=$(yaml badsuite.yaml <<EOF2
variants: { adam: {} }
workloads:
  xor: { experiment: $src/experiments/xor.yaml, epochs: 3 }
EOF2
)
expect 1 "badsuite.yaml:3:8: workload 'xor' \(the performance profile times each variant to it\) needs 'target'" -- "$bp" validate "$f"

# Killed with SIGKILL mid-run, then resumed: the same bits as a run never stopped.
# Long enough to be killed mid-run; sanitized builds run several times slower, so
# scripts/sanitize.sh asks for fewer epochs (the two full runs were 6 of ASan's 10 minutes).
epochs=${BACKPLANE_CLI_RESUME_EPOCHS:-1500}
long=(--set train.epochs="$epochs" --set data.samples=1000)
"$bp" run "$src/experiments/spirals.yaml" "${long[@]}" --out "$tmp/straight" -q
"$bp" run "$src/experiments/spirals.yaml" "${long[@]}" --out "$tmp/killed" -q &
pid=$!
for _ in $(seq 200); do [ -f "$tmp/killed/checkpoints/last.safetensors" ] && break; sleep 0.02; done
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
done_epochs=$(($(wc -l <"$tmp/killed/metrics.csv") - 1))
echo "killed after $done_epochs of $epochs epochs"
[ "$done_epochs" -lt "$epochs" ] || fail "the run finished before it could be killed"
expect 0 'resuming after epoch' -- "$bp" run "$src/experiments/spirals.yaml" "${long[@]}" --resume "$tmp/killed"
fingerprint() { sed -n 's/.*"weights_fingerprint": "\(.*\)".*/\1/p' "$1/summary.json"; }
[ "$(fingerprint "$tmp/straight")" = "$(fingerprint "$tmp/killed")" ] || fail "resumed run differs from the unbroken one"
cmp -s <(cut -d, -f1-5 "$tmp/straight/metrics.csv") <(cut -d, -f1-5 "$tmp/killed/metrics.csv") ||
  fail "resumed metrics differ from the unbroken run's"
expect 1 'cannot be continued by this experiment: .*model.0.dense.units: 64 -> 8; resume it with the experiment it was made with' -- \
  "$bp" run "$src/experiments/spirals.yaml" "${long[@]}" --set model.0.units=8 --resume "$tmp/killed"
expect 1 'no test set to evaluate' -- "$bp" eval "$tmp/killed"
expect 1 'checkpoint .*nothing.safetensors: cannot open' -- "$bp" eval "$tmp/nothing.safetensors"
"$bp" run "$src/experiments/fashion_mnist_mlp.yaml" --set data.limit=1000 --set data.test_limit=300 \
  --set train.epochs=1 --out "$tmp/fashion" -q
expect 0 'test_accuracy 0\.[0-9]+' -- "$bp" eval "$tmp/fashion"
[ "$(grep -cE '^ +[0-9] +[0-9.]+ +( +[0-9]+){10}$' "$tmp/out")" -eq 10 ] || fail "eval: no 10-row confusion matrix: $(cat "$tmp/out")"

# generate: text from a language model (the char LSTM, one epoch on a sliver of the fortunes)
expect 1 'generate needs a language model: .* this model maps \[2\] to \[2\]' -- "$bp" generate "$tmp/killed"
"$bp" run "$src/experiments/char_lstm.yaml" --set data.stride=4096 --set data.validation=0.01 --set train.epochs=1 \
  --out "$tmp/lm" -q
expect 0 '^Once upon' -- "$bp" generate "$tmp/lm" --prompt "Once upon" --tokens 40 --seed 3
[ "$(head -c 49 "$tmp/out" | wc -c)" -eq 49 ] || fail "generate printed less than prompt + 40 bytes: $(cat "$tmp/out")"
cp "$tmp/out" "$tmp/generated"
expect 0 '^Once upon' -- "$bp" generate "$tmp/lm" --prompt "Once upon" --tokens 40 --seed 3
cmp -s "$tmp/out" "$tmp/generated" || fail "generate gave another text for the same seed"
expect 2 'temperature' -- "$bp" generate "$tmp/lm" --temperature -1

echo "cli: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
