#!/usr/bin/env bash
# The allocation tests again under every OpenBLAS kernel this CPU can run: OpenBLAS
# picks its kernels by CPU (OPENBLAS_CORETYPE overrides it), and some allocate where
# others do not, so a promise tested on one kernel is not tested on the next.
# Usage: alloc_kernels.sh BACKPLANE_ALLOC_TESTS
set -u
bin=$1
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0 ran=0
for core in Haswell Zen SkylakeX Cooperlake; do
  case $core in
    Haswell | Zen) need="avx2 fma" ;;
    SkylakeX) need="avx512f avx512bw avx512vl avx512dq avx512cd" ;;
    Cooperlake) need="avx512f avx512bw avx512vl avx512dq avx512cd avx512_bf16" ;;
  esac
  missing=""
  for f in $need; do [[ $flags == *" $f "* ]] || missing+=" $f"; done
  if [ -n "$missing" ]; then
    echo "$core: this CPU cannot run it (no$missing): not tested here"
    continue
  fi
  ran=$((ran + 1))
  if OPENBLAS_CORETYPE=$core "$bin" "[allocations]" >"$log" 2>&1; then
    echo "$core: $(grep -E 'passed|failed' "$log" | tail -1)"
  else
    echo "$core: FAILED"; cat "$log"; status=1
  fi
done
echo "alloc_kernels: $ran kernels tested"
# None runnable (a CPU without AVX2): ctest shows the test as not run, not as passed.
[ "$ran" -gt 0 ] || exit 77
exit $status
