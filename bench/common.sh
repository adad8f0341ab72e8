# Sourced by the bench/compare_*.sh scripts: builds Backplane, installs PyTorch's side,
# measures this machine's FMA peak and defines the helpers (bench/measure.sh).
# After it: $work (a temporary folder, removed on exit), $peak_1t and $peak_2t (GFLOP/s),
# $allocators (the allocator settings a peer's search tries), stats, field.
bash scripts/build.sh --main >/dev/null
# PyTorch's products go through libblas.so.3: without OpenBLAS, Debian picks the
# reference BLAS and PyTorch's MLP runs some 30 times slower (3.5k samples/s measured).
bash scripts/setup.sh python3-torch libopenblas0-pthread libjemalloc2
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)
case "$blas" in *openblas*) ;; *) echo "bench: libblas.so.3 is $blas, not OpenBLAS: PyTorch would be slowed" >&2; exit 1 ;; esac
jemalloc=$(ls /usr/lib/x86_64-linux-gnu/libjemalloc.so.2)
# OPENBLAS_CORETYPE can force half-speed AVX2 kernels: unset for both frameworks.
unset OPENBLAS_CORETYPE
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

source bench/measure.sh

# The allocators a peer's search tries: name and environment. glibc's tunables alone
# moved PyTorch's MLP with Adam from 18k to 51-61k samples/s on one machine of this kind.
# The last also backs the heap with 2 MiB pages, as Backplane does for itself
# (core/cli/main.cpp): fewer page faults on first touch.
tuned="GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"
allocators=("malloc|" "malloc-tuned|$tuned" "jemalloc|LD_PRELOAD=$jemalloc"
  "malloc-tuned-huge|$tuned:glibc.malloc.hugetlb=1")

