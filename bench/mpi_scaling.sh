#!/usr/bin/env bash
# Data-parallel training over processes (MPI) against threads, on this machine: the
# benchmark MLP (SGD with momentum, and Adam) and CNN (bench/mlp.yaml, bench/cnn.yaml),
# each as 1 process x 2 threads and as 2 processes x 1 thread (mpirun --bind-to core).
# Both give the same bits (tests/mpi.sh); this measures what the exchange costs.
# Usage: bash bench/mpi_scaling.sh [REPS]      (default 3 runs of each, alternating)
# Prints samples/s (median, min-max), the ratio, the share of the 2-thread FMA peak
# measured at the start, and the bytes each process sends per step (summary.json's
# bytes_sent_per_step, the figure docs/distributed.md's model uses).
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
bash scripts/build.sh --main >/dev/null
[ -x /usr/bin/mpirun ] || { echo "bench: no mpirun (scripts/setup.sh installs Open MPI)" >&2; exit 1; }
# OPENBLAS_CORETYPE can force half-speed AVX2 kernels.
unset OPENBLAS_CORETYPE
# Open MPI's opt-in to run as root (a container, CI).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source bench/measure.sh

fingerprint() { sed -n 's/.*"weights_fingerprint": "\(.*\)".*/\1/p' "$1"; }

sgd="optimizer={name: sgd, lr: 0.1, momentum: 0.9}"
# name | yaml | --set | FLOPs per sample (bench/compare_peers.sh's; * direct convolution's)
cases=(
  "mlp-sgd|bench/mlp.yaml|$sgd|1.01e6"
  "mlp-adam|bench/mlp.yaml|train.epochs=2|1.01e6"
  "cnn-adam|bench/cnn.yaml|train.epochs=1|22.3e6*"
)
printf 'FP32 FMA peak measured now: %s GFLOP/s at 2 threads\n' "$peak_2t"
printf '%-9s %-24s %-24s %7s %12s %18s\n' model "1 process x 2 threads" "2 processes x 1 thread" ratio \
  "peak (1p/2p)" "bytes sent/step"
for c in "${cases[@]}"; do
  IFS='|' read -r name yaml set flops <<<"$c"
  : >"$work/threads"; : >"$work/processes"
  for ((r = 1; r <= reps; r++)); do
    build/bin/backplane run "$yaml" --out "$work/t-$name-$r" -q --set train.threads=2 --set "$set"
    field samples_per_second "$work/t-$name-$r/summary.json" >>"$work/threads"
    mpirun -np 2 --bind-to core build/bin/backplane run "$yaml" --out "$work/p-$name-$r" -q \
      --set train.threads=1 --set "$set"
    field samples_per_second "$work/p-$name-$r/summary.json" >>"$work/processes"
    [ "$(fingerprint "$work/t-$name-$r/summary.json")" = "$(fingerprint "$work/p-$name-$r/summary.json")" ] ||
      { echo "bench: $name: the 2-process run's weights differ from the 2-thread run's" >&2; exit 1; }
  done
  bytes=$(field bytes_sent_per_step "$work/p-$name-1/summary.json")
  read -r tm tl th < <(stats <"$work/threads")
  read -r pm pl ph < <(stats <"$work/processes")
  awk -v n="$name" -v tm="$tm" -v tl="$tl" -v th="$th" -v pm="$pm" -v pl="$pl" -v ph="$ph" -v f="${flops%\*}" \
      -v peak="$peak_2t" -v bytes="$bytes" 'BEGIN {
    printf "%-9s %-24s %-24s %6.2fx %5.1f%%/%4.1f%% %14.2f MB\n", n, sprintf("%.0f (%.0f-%.0f)", tm, tl, th),
      sprintf("%.0f (%.0f-%.0f)", pm, pl, ph), pm / tm, 100 * tm * f / 1e9 / peak, 100 * pm * f / 1e9 / peak, bytes / 1e6 }'
done
echo "($reps runs each, alternating; ratio = processes / threads; every pair's weights checked equal."
echo " * the CNN's FLOPs are the direct convolution's; Backplane does its second one by Winograd's algorithm)"
