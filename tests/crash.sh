#!/usr/bin/env bash
# Crash safety as a user meets it: a comparison killed with SIGKILL at three points
# and resumed gives the files of an unbroken one, and so do a tuned suite, a graph model's run and the shipped
# sequence models' (which also give the same bits at 1, 2 and 8 threads); a disk that fills mid-run (a file
# size limit) ends the run with one clear error, and its last checkpoint resumes it
# to the bits of a run never stopped.
# Usage: crash.sh BACKPLANE_BINARY SOURCE_DIR
set -u
bp=$1 src=$(realpath "$2")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 passed=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { passed=$((passed + 1)); }

fingerprint() { sed -n 's/.*"weights_fingerprint": "\(.*\)".*/\1/p' "$1/summary.json"; }
# The comparison's files without what the clock decides: comparison.csv's columns 8
# and 9 (seconds_to_target, samples_per_second), and those keys in comparison.json.
untimed() {
  cut -d, -f1-7,10 "$1/comparison.csv"
  grep -vE '"(seconds_to_target|samples_per_second)"' "$1/comparison.json"
  cat "$1/loss_vs_epoch.svg" "$1/accuracy_vs_epoch.svg"
}
# Waits (at most 60 s) until `$1` (a shell condition) holds.
wait_for() {
  for _ in $(seq 6000); do eval "$1" && return 0; sleep 0.01; done
  return 1
}
summaries() { find "$1" -name summary.json | wc -l; }

# ---- a comparison killed three times: in its first run, after 5 runs, after 12 of 14
exp=$src/experiments/compare_optimizers_spirals.yaml
sets=(--set train.epochs=40 --set data.samples=3000 --set "compare.seeds=[1, 2]")
"$bp" run "$exp" "${sets[@]}" --out "$tmp/whole" --jobs 2 -q || fail "the unbroken comparison failed"
out=$tmp/killed
kill_when() {   # kill_when CONDITION RUN-ARGS...: starts the comparison, kills it when CONDITION holds
  local condition=$1; shift
  "$bp" run "$exp" "${sets[@]}" "$@" -q >"$tmp/log" 2>&1 &
  local pid=$!
  wait_for "$condition" || fail "never reached: $condition"
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  [ ! -f "$out/comparison.json" ] || fail "the comparison finished before it was killed ($condition)"
  echo "killed with $(summaries "$out") of 14 runs finished"
}
kill_when '[ -n "$(find "$out" -name last.safetensors 2>/dev/null)" ]' --out "$out" --jobs 2
kill_when '[ "$(summaries "$out")" -ge 5 ]' --resume "$out"
kill_when '[ "$(summaries "$out")" -ge 12 ]' --resume "$out" --jobs 2
"$bp" run "$exp" "${sets[@]}" --resume "$out" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "the last resume failed"; }
grep -qE 'resuming: 1[23] runs finished' "$tmp/log" || fail "the resume did not keep the finished runs: $(head -3 "$tmp/log")"
if cmp -s <(untimed "$tmp/whole") <(untimed "$out"); then pass; else
  fail "the resumed comparison's files differ from the unbroken one's"; diff <(untimed "$tmp/whole") <(untimed "$out") | head; fi
files() { (cd "$1" && find . | sort); }
[ "$(files "$tmp/whole")" = "$(files "$out")" ] ||
  { fail "the resumed comparison holds other files"; diff <(files "$tmp/whole") <(files "$out") | head; }
for run in "$tmp"/whole/*/seed-*; do
  other=$out/${run#"$tmp/whole/"}
  [ "$(fingerprint "$run")" = "$(fingerprint "$other")" ] || fail "${run#"$tmp/whole/"} differs after the kills"
  # metrics.csv but for its seconds and samples_per_second (columns 8 and 9)
  cmp -s <(cut -d, -f1-7,10 "$run/metrics.csv") <(cut -d, -f1-7,10 "$other/metrics.csv") ||
    fail "${run#"$tmp/whole/"}/metrics.csv differs after the kills"
done
pass
# Run again into the same folder without --resume: refused, nothing touched.
before=$(find "$out" -type f | sort | xargs cat | cksum)
"$bp" run "$exp" "${sets[@]}" --out "$out" -q 2>"$tmp/err" && fail "a second run into the comparison's folder was not refused"
grep -q 'already holds results; continue that comparison with --resume' "$tmp/err" || fail "refusal says: $(cat "$tmp/err")"
[ "$before" = "$(find "$out" -type f | sort | xargs cat | cksum)" ] && pass || fail "the refused run changed the folder"

# ---- a tuned suite killed three times: in its first workload's trials, in its seeds,
# in the second workload; resumed, its files are the unbroken suite's, byte for byte
cat >"$tmp/suite.yaml" <<EOF2
name: crash_suite
seeds: [1, 2]
tuning: { trials: 3 }
variants:
  adam: { optimizer: { name: adam, lr: { log_uniform: [0.001, 0.03] } } }
  momentum: { optimizer: { name: sgd, lr: { log_uniform: [0.01, 0.3] }, momentum: 0.9 } }
workloads:
  spirals:
    experiment: $src/experiments/spirals.yaml
    set: [data.samples=20000]
    target: { metric: val_accuracy, value: 0.9 }
    epochs: 30
    trial_epochs: 15
  wide:
    experiment: $src/experiments/spirals.yaml
    set: [data.samples=20000, data.turns=1]
    target: { metric: val_accuracy, value: 0.95 }
    epochs: 30
    trial_epochs: 15
EOF2
"$bp" run "$tmp/suite.yaml" --out "$tmp/suite-whole" -q || fail "the unbroken suite failed"
out=$tmp/suite-killed
kill_suite_when() {   # kill_suite_when CONDITION RUN-ARGS...
  local condition=$1; shift
  "$bp" run "$tmp/suite.yaml" "$@" -q >"$tmp/log" 2>&1 &
  local pid=$!
  wait_for "$condition" || fail "never reached: $condition"
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  [ ! -f "$out/suite.json" ] || fail "the suite finished before it was killed ($condition)"
  echo "killed with $(summaries "$out") of 20 runs finished"
}
kill_suite_when '[ "$(summaries "$out")" -ge 3 ]' --out "$out"
kill_suite_when '[ "$(summaries "$out")" -ge 8 ]' --resume "$out"
kill_suite_when '[ "$(summaries "$out")" -ge 14 ]' --resume "$out" --jobs 2
"$bp" run "$tmp/suite.yaml" --resume "$out" -q || fail "the suite's last resume failed"
for file in suite.json suite.csv profile.svg report.html spirals/trials.csv wide/trials.csv; do
  cmp -s "$tmp/suite-whole/$file" "$out/$file" || fail "the resumed suite's $file differs from the unbroken one's"
done
for run in "$tmp"/suite-whole/*/*/seed-* "$tmp"/suite-whole/*/*/trial-*; do
  [ "$(fingerprint "$run")" = "$(fingerprint "$out/${run#"$tmp/suite-whole/"}")" ] ||
    fail "${run#"$tmp/suite-whole/"} differs after the kills"
done
pass

# ---- a graph model (residual connections) killed mid-run resumes to the unbroken run's bits
graph=$src/experiments/spirals_residual.yaml
gsets=(--set train.epochs=300 --set data.samples=4000 --set train.checkpoint_every=1)
"$bp" run "$graph" "${gsets[@]}" --out "$tmp/graph-whole" -q || fail "the unbroken graph run failed"
"$bp" run "$graph" "${gsets[@]}" --out "$tmp/graph-killed" -q & pid=$!
wait_for '[ -f "$tmp/graph-killed/checkpoints/last.safetensors" ]' || fail "the graph run wrote no checkpoint"
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
[ ! -f "$tmp/graph-killed/summary.json" ] || fail "the graph run finished before it was killed"
echo "graph run killed after epoch $(($(wc -l <"$tmp/graph-killed/metrics.csv") - 1))"
"$bp" run "$graph" "${gsets[@]}" --resume "$tmp/graph-killed" -q || fail "resuming the killed graph run failed"
[ "$(fingerprint "$tmp/graph-whole")" = "$(fingerprint "$tmp/graph-killed")" ] && pass ||
  fail "the graph run resumed after kill -9 differs from the unbroken one"

# ---- the shipped sequence models: the same bits at 1, 2 and 8 threads, and after kill -9 + --resume
# (a thirty-second of the windows, 1% of the text held out: seconds per epoch)
for name in char_transformer char_lstm; do
  lm=$src/experiments/$name.yaml
  lsets=(--set data.stride=2048 --set data.validation=0.01 --set train.epochs=2)
  for threads in 1 2 8; do
    "$bp" run "$lm" "${lsets[@]}" --set train.threads=$threads --out "$tmp/$name-$threads" -q ||
      fail "$name at $threads threads failed"
  done
  [ "$(fingerprint "$tmp/$name-1")" = "$(fingerprint "$tmp/$name-2")" ] &&
    [ "$(fingerprint "$tmp/$name-1")" = "$(fingerprint "$tmp/$name-8")" ] && pass ||
    fail "$name gives other weights at 1, 2 and 8 threads"
  "$bp" run "$lm" "${lsets[@]}" --set train.threads=2 --out "$tmp/$name-killed" -q & pid=$!
  wait_for '[ -f "$tmp/$name-killed/checkpoints/last.safetensors" ]' || fail "$name wrote no checkpoint"
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  [ ! -f "$tmp/$name-killed/summary.json" ] || fail "$name finished before it was killed"
  "$bp" run "$lm" "${lsets[@]}" --set train.threads=2 --resume "$tmp/$name-killed" -q || fail "resuming $name failed"
  [ "$(fingerprint "$tmp/$name-2")" = "$(fingerprint "$tmp/$name-killed")" ] && pass ||
    fail "$name resumed after kill -9 differs from the unbroken run"
done

# ---- a disk that fills mid-run: one error line, the last checkpoint kept and resumable
spirals=$src/experiments/spirals.yaml
long=(--set train.epochs=120 --set data.samples=600)
"$bp" run "$spirals" "${long[@]}" --out "$tmp/straight" -q
"$bp" run "$spirals" "${long[@]}" --set train.epochs=1 --out "$tmp/one" -q
size=$(stat -c %s "$tmp/one/checkpoints/last.safetensors")
# Room for the checkpoint and 3 KiB more: its metrics history outgrows that in ~12 epochs.
( ulimit -f $(( size / 1024 + 3 )); exec "$bp" run "$spirals" "${long[@]}" --out "$tmp/full" -q ) 2>"$tmp/err"
status=$?
[ "$status" -eq 1 ] || fail "a full disk ended the run with status $status, expected 1"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "a full disk printed $(wc -l <"$tmp/err") lines: $(cat "$tmp/err")"
grep -q 'backplane: error: cannot write .*: File too large (the previous version, if any, is kept)' "$tmp/err" ||
  fail "full disk message: $(cat "$tmp/err")"
[ ! -f "$tmp/full/summary.json" ] || fail "a run that could not write its checkpoint claims to be finished"
ls "$tmp/full/checkpoints" | grep -q tmp && fail "a half-written file was left: $(ls "$tmp/full/checkpoints")"
echo "the disk filled after epoch $(($(wc -l <"$tmp/full/metrics.csv") - 1))"
"$bp" run "$spirals" "${long[@]}" --resume "$tmp/full" -q || fail "resuming after the full disk failed"
[ "$(fingerprint "$tmp/straight")" = "$(fingerprint "$tmp/full")" ] && pass ||
  fail "the run resumed after a full disk differs from the unbroken one"

echo "crash: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
