#!/usr/bin/env bash
# Builds the C++ peers of bench/torch_train.py (libtorch_train, dlib_train, tinydnn_train)
# into a folder, each only when its source is newer than its binary (or this script is).
# Usage: bash bench/peers/build.sh [OUT]          (default bench/peers/build)
# Needs Debian 12's libtorch-dev, libdlib-dev, tiny-dnn, zlib1g-dev, and for tiny-dnn's
# headers libcereal-dev and libstb-dev (the tiny-dnn package includes <cereal/...> and
# "third_party/stb/..." but does not depend on them).
# CXX (default g++) and EXTRA_CXXFLAGS may be set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/build}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cxx=${CXX:-g++}
# shellcheck disable=SC2206
flags=(-O3 -march=native -std=c++17 -Wall ${EXTRA_CXXFLAGS:-})

build() {   # name source [arguments...]: compile source into $out/name when the binary is
            # missing or older than the source, common.hpp or this script
  local name=$1 src=$2; shift 2
  if [ ! -e "$out/$name" ] || [ "$src" -nt "$out/$name" ] || [ "$here/common.hpp" -nt "$out/$name" ] || [ "$here/build.sh" -nt "$out/$name" ]; then
    echo "building $out/$name" >&2
    "$cxx" "${flags[@]}" "$src" "$@" -o "$out/$name.tmp"
    mv "$out/$name.tmp" "$out/$name"
  fi
}

# LibTorch: Debian's libtorch is built with the C++11 ABI (_GLIBCXX_USE_CXX11_ABI=1, the
# compiler's default; stated for clarity). libtorch.so is linked without --as-needed so that
# its registrations load.
build libtorch_train "$here/libtorch_train.cpp" -D_GLIBCXX_USE_CXX11_ABI=1 \
  -I/usr/include/torch/csrc/api/include \
  -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10 -Wl,--as-needed -lz

# dlib: the shared libdlib (built with DLIB_USE_BLAS / LAPACK, linked to libblas.so.3 =
# OpenBLAS here), as pkg-config dlib-1 says, less the image/sqlite libraries it does not need.
build dlib_train "$here/dlib_train.cpp" -ldlib -lblas -llapack -lpthread -lz

# tiny-dnn (header only): the source defines CNN_USE_AVX / CNN_USE_SSE and leaves tiny-dnn's
# std::async threads as packaged; tinydnn_train_serial, the same source with
# -DCNN_SINGLE_THREAD, is what tinydnn_train --threads 1 runs. The include shim maps
# tiny-dnn's "third_party/stb/..." onto libstb-dev's headers.
mkdir -p "$out/tinydnn-include/third_party"
ln -sfn /usr/include/stb "$out/tinydnn-include/third_party/stb"
build tinydnn_train "$here/tinydnn_train.cpp" -pthread -I"$out/tinydnn-include" -lz
build tinydnn_train_serial "$here/tinydnn_train.cpp" -DCNN_SINGLE_THREAD -pthread -I"$out/tinydnn-include" -lz
