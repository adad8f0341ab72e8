#!/usr/bin/env bash
# What bounds the benchmark MLP's 2-thread step here (bench/mlp_limits.cpp and
# bench/cross_core.cpp say what they run): its products alone at 1 and 2 threads against
# the FMA peak measured now, the 2-thread step that 65% of that peak allows, and what an
# update of the MLP's parameters costs when both cores hold the weights' cache lines, when
# each holds its own half, and when one holds them all (the other then writes lines only
# the first holds).
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
cross_core "$rounds"
median() {   # file key column: the median over the rounds of a line's number in that column
  sed -n "s/^$2 //p" "$1" | cut -d' ' -f"$3" | stats | cut -d' ' -f1
}
p1=$(median "$work/limits.txt" products_gflops_1t 1)
p2=$(median "$work/limits.txt" products_gflops_2t 1)
cross=()
for way in own both one; do
  for thread in 1 2; do cross+=("$(median "$work/cross_core.txt" "cross_core_us_$way" $thread)"); done
done
# A step of batch 128 is 128 samples of 503,552 multiply-adds (bench/compare_peers.sh's 1.01e6 FLOPs).
awk -v p1="$p1" -v p2="$p2" -v peak1="$peak_1t" -v peak2="$peak_2t" -v cross="${cross[*]}" 'BEGIN {
  flops = 128 * 2 * 503552
  step = flops / p2 / 1e3; target = flops / (0.65 * peak2) / 1e3
  split(cross, c, " ")
  printf "FMA peak: %.1f GFLOP/s at 1 thread, %.1f at 2\n", peak1, peak2
  printf "the MLP step'\''s products alone (medians of the rounds):\n"
  printf "  1 thread:  %.1f GFLOP/s, %.1f%% of the 1-thread peak\n", p1, 100 * p1 / peak1
  printf "  2 threads: %.1f GFLOP/s, %.1f%% of the 2-thread peak: %.0f us a step\n", p2, 100 * p2 / peak2, step
  if (target >= step) printf "65%% of the 2-thread peak is a step of %.0f us: %.0f us beyond the products for all else\n", target, target - step
  else printf "65%% of the 2-thread peak is a step of %.0f us: the products alone take %.0f us more\n", target, step - target
  printf "an update of the 235,146 parameters by 2 threads, each its half (us, thread 0 / thread 1):\n"
  printf "  after each read only its half:                   %6.1f / %6.1f\n", c[1], c[2]
  printf "  after both read every weight:                     %6.1f / %6.1f\n", c[3], c[4]
  printf "  after thread 0 read every weight, thread 1 none:  %6.1f / %6.1f\n", c[5], c[6]
}'
