#!/usr/bin/env bash
# What bounds the benchmark MLP's 2-thread step here (bench/mlp_limits.cpp says what it
# runs): its products alone at 1 and 2 threads against the FMA peak measured now, the
# 2-thread step that 65% of that peak allows, and what an update of the MLP's parameters
# costs when both cores hold the weights' cache lines, when each holds its own half, and
# when one holds them all (the other then writes lines only the first holds).
# Usage: bash bench/mlp_limits.sh [ROUNDS]   (default 3; about half a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
case "$rounds" in '' | *[!0-9]* | 0) echo "usage: bash bench/mlp_limits.sh [ROUNDS >= 1]" >&2; exit 2 ;; esac
bash scripts/build.sh --main >/dev/null   # version.hpp, and the packages the layers need
unset OPENBLAS_CORETYPE   # it can force half-speed AVX2 kernels
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source bench/measure.sh
blas=/usr/lib/x86_64-linux-gnu/openblas-pthread
# The layers plugin's own flags (CMake's Release with BACKPLANE_NATIVE, the OpenBLAS backend).
g++ -std=c++20 -O3 -march=native -DNDEBUG -DBACKPLANE_OPENBLAS -Ibuild/sdk/include -Isdk/include \
  -Iplugins/layers -I/usr/include/eigen3 -I/usr/include/x86_64-linux-gnu/openblas-pthread \
  bench/mlp_limits.cpp plugins/layers/gemm.cpp -L"$blas" -lopenblas -Wl,-rpath,"$blas" -pthread \
  -o "$work/mlp_limits"
"$work/mlp_limits" "$rounds" >"$work/limits.txt"
median() {   # key [column]: the median over the rounds of a line's first (or given) number
  sed -n "s/^$1 //p" "$work/limits.txt" | cut -d' ' -f"${2:-1}" | stats | cut -d' ' -f1
}
p1=$(median products_gflops_1t)
p2=$(median products_gflops_2t)
both0=$(median update_us_both_read_all 1)
both1=$(median update_us_both_read_all 2)
own0=$(median update_us_each_read_own 1)
own1=$(median update_us_each_read_own 2)
one0=$(median update_us_one_read_all 1)
one1=$(median update_us_one_read_all 2)
# A step of batch 128 is 128 samples of 503,552 multiply-adds (bench/compare_peers.sh's 1.01e6 FLOPs).
awk -v p1="$p1" -v p2="$p2" -v peak1="$peak_1t" -v peak2="$peak_2t" \
    -v both0="$both0" -v both1="$both1" -v own0="$own0" -v own1="$own1" -v one0="$one0" -v one1="$one1" 'BEGIN {
  flops = 128 * 2 * 503552
  step = flops / p2 / 1e3; target = flops / (0.65 * peak2) / 1e3
  printf "FMA peak: %.1f GFLOP/s at 1 thread, %.1f at 2\n", peak1, peak2
  printf "the MLP step'\''s products alone (medians of the rounds):\n"
  printf "  1 thread:  %.1f GFLOP/s, %.1f%% of the 1-thread peak\n", p1, 100 * p1 / peak1
  printf "  2 threads: %.1f GFLOP/s, %.1f%% of the 2-thread peak: %.0f us a step\n", p2, 100 * p2 / peak2, step
  if (target >= step) printf "65%% of the 2-thread peak is a step of %.0f us: %.0f us beyond the products for all else\n", target, target - step
  else printf "65%% of the 2-thread peak is a step of %.0f us: the products alone take %.0f us more\n", target, step - target
  printf "an update of the 235,146 parameters by 2 threads, each its half (us, thread 0 / thread 1):\n"
  printf "  after each read only its half:                   %6.1f / %6.1f\n", own0, own1
  printf "  after both read every weight:                     %6.1f / %6.1f\n", both0, both1
  printf "  after thread 0 read every weight, thread 1 none:  %6.1f / %6.1f\n", one0, one1
}'
