#!/usr/bin/env bash
# Training throughput, Backplane against PyTorch on this machine, side by side.
# Usage: bash bench/compare_torch.sh [REPS]        (default 3 runs of each, alternating)
# Models: the MLP 784-256-128-10 with SGD+momentum and with Adam (2 epochs), and a
# LeNet-like CNN with Adam (1 epoch of 20,000 images); batch 128, Fashion-MNIST. Each
# side in its best 2-core setting: Backplane train.threads 2; PyTorch (Debian's
# python3-torch) 1 thread with a 2-thread OpenBLAS for the MLP, 2 threads with a
# 1-thread OpenBLAS and a malloc that keeps its memory for the CNN. OPENBLAS_CORETYPE
# is unset for both (it can force half-speed AVX2 kernels). Prints samples/s (median,
# min-max), the ratio, and GFLOP/s with its share of the 517 GFLOP/s 2-core peak.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
bash scripts/build.sh >/dev/null
# PyTorch's products go through libblas.so.3: without OpenBLAS, Debian picks the
# reference BLAS and PyTorch's MLP runs some 30 times slower (3.5k samples/s measured).
bash scripts/setup.sh python3-torch libopenblas0-pthread
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)
case "$blas" in *openblas*) ;; *) echo "compare_torch: libblas.so.3 is $blas, not OpenBLAS: PyTorch would be slowed" >&2; exit 1 ;; esac
unset OPENBLAS_CORETYPE
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name | backplane overrides | torch arguments | torch environment | FLOPs per sample
cases=(
  "mlp-sgd|bench/mlp.yaml|--set optimizer={name: sgd, lr: 0.1, momentum: 0.9}|--model mlp --opt sgd --threads 1 --epochs 2|OPENBLAS_NUM_THREADS=2|1.01e6"
  "mlp-adam|bench/mlp.yaml||--model mlp --opt adam --threads 1 --epochs 2|OPENBLAS_NUM_THREADS=2|1.01e6"
  "cnn-adam|bench/cnn.yaml||--model cnn --opt adam --threads 2 --epochs 1 --limit 20000|OPENBLAS_NUM_THREADS=1 GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824|22.3e6"
)

stats() {   # median min max of the numbers on stdin
  sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}

printf '%-9s %-28s %-28s %6s %9s %6s\n' model "backplane samples/s" "pytorch samples/s" ratio "GFLOP/s" "peak"
for c in "${cases[@]}"; do
  IFS='|' read -r name yaml set torch_args torch_env flops <<<"$c"
  : >"$work/bp" ; : >"$work/pt"
  for ((r = 1; r <= reps; r++)); do
    if [ -n "$set" ]; then
      build/bin/backplane run "$yaml" --out "$work/run-$name-$r" --quiet "${set%% *}" "${set#* }"
    else
      build/bin/backplane run "$yaml" --out "$work/run-$name-$r" --quiet
    fi
    sed -n 's/^  "samples_per_second": \([0-9.e+]*\).*/\1/p' "$work/run-$name-$r/summary.json" >>"$work/bp"
    # shellcheck disable=SC2086
    env $torch_env /usr/bin/python3 bench/torch_train.py $torch_args | sed -n 's/^RESULT .*"samples_per_second": \([0-9.e+]*\).*/\1/p' >>"$work/pt"
  done
  read -r bm bl bh < <(stats <"$work/bp")
  read -r pm pl ph < <(stats <"$work/pt")
  awk -v n="$name" -v bm="$bm" -v bl="$bl" -v bh="$bh" -v pm="$pm" -v pl="$pl" -v ph="$ph" -v f="$flops" 'BEGIN {
    printf "%-9s %-28s %-28s %5.2fx %9.1f %5.1f%%\n", n,
      sprintf("%.0f (%.0f-%.0f)", bm, bl, bh), sprintf("%.0f (%.0f-%.0f)", pm, pl, ph),
      bm / pm, bm * f / 1e9, 100 * bm * f / 1e9 / 517 }'
done
echo "($reps runs each, alternating; GFLOP/s and peak are Backplane's)"
