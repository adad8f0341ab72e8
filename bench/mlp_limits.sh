#!/usr/bin/env bash
# What bounds the benchmark MLP's 2-thread step here (bench/mlp_limits.cpp says what it
# runs): its products alone at 1 and 2 threads against the FMA peak measured now, the
# 2-thread step that 65% of that peak allows, and what an update of the MLP's parameters
# costs when both cores hold the weights' cache lines against when each holds its own half.
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
median() { sed -n "s/^$1 //p" "$work/limits.txt" | stats | cut -d' ' -f1; }
p1=$(median products_gflops_1t) p2=$(median products_gflops_2t)
all=$(median update_us_read_all) own=$(median update_us_read_own)
# A step of batch 128 is 128 x 1.01 MFLOP (bench/compare_peers.sh's count).
awk -v p1="$p1" -v p2="$p2" -v peak1="$peak_1t" -v peak2="$peak_2t" -v all="$all" -v own="$own" 'BEGIN {
  flops = 128 * 1.01e6
  printf "FMA peak: %.1f GFLOP/s at 1 thread, %.1f at 2\n", peak1, peak2
  printf "the MLP step'\''s products alone (medians of the rounds):\n"
  printf "  1 thread:  %.1f GFLOP/s, %.1f%% of the 1-thread peak\n", p1, 100 * p1 / peak1
  printf "  2 threads: %.1f GFLOP/s, %.1f%% of the 2-thread peak: %.0f us a step\n", p2, 100 * p2 / peak2, flops / p2 / 1e3
  printf "65%% of the 2-thread peak is a step of %.0f us: %.0f us beyond the products for all else\n", flops / (0.65 * peak2) / 1e3, flops / (0.65 * peak2) / 1e3 - flops / p2 / 1e3
  printf "an update of the 235,146 parameters, 2 threads, each its half:\n"
  printf "  after both threads read every weight: %.1f us\n", all
  printf "  after each read only its half:        %.1f us (%.2fx)\n", own, all / own
}'
