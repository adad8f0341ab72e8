#!/usr/bin/env bash
# conv2d's direct convolution against its Winograd path, one shard of each 3x3 geometry of
# the shipped Fashion CNN and ResNet, one thread (bench/conv_algorithms.cpp says what it
# prints). The data that conv2d's auto choice rests on (docs/performance.md).
# Usage: bash bench/conv_algorithms.sh [REPS]   (default 50 rounds; about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-50}
case "$reps" in '' | *[!0-9]* | 0) echo "usage: bash bench/conv_algorithms.sh [REPS >= 1]" >&2; exit 2 ;; esac
bash scripts/build.sh --main >/dev/null   # version.hpp, and the packages the layers need
blas=/usr/lib/x86_64-linux-gnu/openblas-pthread
mkdir -p build/bench
# The layers plugin's own flags (CMake's Release with BACKPLANE_NATIVE, the OpenBLAS backend).
g++ -std=c++20 -O3 -march=native -DNDEBUG -DBACKPLANE_OPENBLAS -Ibuild/sdk/include -Isdk/include \
  -Iplugins/layers -I/usr/include/eigen3 -I/usr/include/x86_64-linux-gnu/openblas-pthread \
  bench/conv_algorithms.cpp plugins/layers/winograd.cpp plugins/layers/direct_conv.cpp plugins/layers/gemm.cpp \
  -L"$blas" -lopenblas -Wl,-rpath,"$blas" -o build/bench/conv_algorithms
build/bench/conv_algorithms "$reps"
