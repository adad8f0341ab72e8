#!/usr/bin/env bash
# Fuzzes the readers of outside input with libFuzzer: checkpoints, IDX and CSV data
# files, experiment files, plugin manifests (tests/fuzz/README.md). Installs what is missing (clang and
# its sanitizer runtimes), builds build-fuzz/ with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, runs each target over the inputs that once crashed it
# (tests/fuzz/regressions/<target>/), then fuzzes it for SECONDS on a copy of its seed
# corpus (tests/fuzz/corpus/<target>/, never changed here).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     SECONDS per target, default 30; all targets by default
#
# Prints per target the regression inputs run, the fuzzing runs executed and the
# result; exits non-zero if a target crashes, hangs, leaks or fails a regression
# input. Inputs that crash are kept in the work folder it prints.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
[ $# -gt 0 ] && shift
case $seconds in '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;; esac
all=(fuzz_checkpoint fuzz_idx fuzz_csv fuzz_experiment fuzz_manifest)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t'; targets: ${all[*]}" >&2; exit 2; }
done

bash scripts/setup.sh clang libclang-rt-14-dev
# A build folder of its own: everything in it is instrumented (CMakeLists.txt, BACKPLANE_FUZZ).
CXX=clang++ cmake -S . -B build-fuzz -DBACKPLANE_FUZZ=ON -DBACKPLANE_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz --parallel "$(nproc)" --target "${targets[@]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/backplane-fuzz.XXXXXX")
echo "work folder: $work"
# UBSan's reports abort (-fno-sanitize-recover) with a stack; libFuzzer finds leaks after each input.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
limits=(-timeout=10 -rss_limit_mb=2048)

failed=0
summary=()
for t in "${targets[@]}"; do
  bin=build-fuzz/bin/$t
  mkdir -p "$work/$t/corpus" "$work/$t/crashes"

  # Every input that once crashed it, one run each (libFuzzer runs files given by name).
  regressions=(tests/fuzz/regressions/$t/*)
  regression_result="none"
  if [ -e "${regressions[0]}" ]; then
    if "$bin" "${limits[@]}" "${regressions[@]}" >"$work/$t/regressions.log" 2>&1; then
      regression_result="${#regressions[@]} ok"
    else
      regression_result="${#regressions[@]}, FAILED (log: $work/$t/regressions.log)"
      failed=1
    fi
  fi

  cp -r "tests/fuzz/corpus/$t/." "$work/$t/corpus/"
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  echo "fuzzing $t for ${seconds}s"
  set +e
  "$bin" "$work/$t/corpus" "${dict[@]}" "${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$work/$t/crashes/" >"$work/$t/fuzz.log" 2>&1
  rc=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/$t/fuzz.log" | awk '{print $2}' | tail -1)
  found=$(ls "$work/$t/crashes")
  if [ $rc -eq 0 ] && [ -z "$found" ]; then
    result="ok"
  else
    failed=1
    result="FOUND: $(echo $found) (log: $work/$t/fuzz.log)"
    [ -z "$found" ] && result="FAILED, exit status $rc (log: $work/$t/fuzz.log)"
  fi
  summary+=("$t: regressions ${regression_result}; ${runs:-0} runs in ${seconds}s: $result")
  echo "  ${summary[-1]}"
done

echo
echo "summary (work folder $work):"
printf '  %s\n' "${summary[@]}"
exit $failed
