#!/usr/bin/env bash
# Builds and tests Backplane under a sanitizer, each in its own build folder:
#
#   scripts/sanitize.sh address [ctest args]    build-asan/: ASan + UBSan, the whole ctest suite
#   scripts/sanitize.sh thread [catch2 spec]    build-tsan/: TSan, the multi-threaded tests
#
# Any sanitizer report fails the run: ASan's, LeakSanitizer's and TSan's go to files under
# BUILD/sanitizer-reports/ (so a test that expects a failing exit status or checks stderr
# cannot swallow one), and the script prints them and exits 1 when there is any. UBSan's
# (to stderr: see below) end the process with status 86 and are looked for in ctest's log.
#
# TSan needs a oneTBB built with -fsanitize=thread: Debian's libtbb.so.12 is not
# instrumented, so TSan does not see the happens-before edges of spawning, stealing and
# joining tasks and reports hundreds of false races in any code a task runs (ours, Eigen's,
# TBB's inline headers). No suppression can tell those from real races (a race
# suppression matches any frame of either stack, and every task's stack holds TBB's
# frames), so this script builds oneTBB from Debian's own source package of the installed
# version, with oneTBB's TBB_SANITIZE=thread (about 1 minute on 2 cores, once per build
# folder), and links the TSan build against it. docs/sanitizers.md has the measurements.
set -euo pipefail

mode=${1:-}
case "$mode" in
  address) build=build-asan ;;
  thread) build=build-tsan ;;
  *) echo "usage: scripts/sanitize.sh address|thread [ctest args | catch2 test spec]" >&2; exit 2 ;;
esac
shift
cd "$(dirname "$0")/.."
src=$PWD
build=$src/$build
jobs=${JOBS:-$(nproc)}   # parallel compile and test jobs
generator=()
[ -f "$build/CMakeCache.txt" ] || ! command -v ninja >/dev/null || generator=(-G Ninja)
launcher=()
! command -v ccache >/dev/null || launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

stamp() { echo "== $(date +%T) $*"; }
# thread: dpkg-source unpacks oneTBB's source package; address: report_render's browser.
bash scripts/setup.sh "$([ "$mode" = thread ] && echo dpkg-dev || echo chromium)"

# --- oneTBB with -fsanitize=thread, from Debian's source package of the installed libtbb-dev.
build_tsan_onetbb() {
  local version dir prefix apt
  version=$(dpkg-query -W -f='${Version}' libtbb-dev)
  dir=$build/onetbb-$version
  prefix=$dir/prefix
  if [ -f "$prefix/lib/cmake/TBB/TBBConfig.cmake" ]; then
    echo "$prefix"
    return
  fi
  stamp "oneTBB $version with -fsanitize=thread into $prefix" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  # The deb-src index in a private apt state: the system's apt configuration is left as
  # it is and no root is needed.
  apt=$dir/apt
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
  local mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
  local security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
  local codename
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  printf 'deb-src %s %s main\ndeb-src %s %s-updates main\ndeb-src %s %s-security main\n' \
    "$mirror" "$codename" "$mirror" "$codename" "$security" "$codename" >"$apt/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
              -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache")
  apt-get "${opts[@]}" -qq update >&2
  (cd "$dir" && apt-get "${opts[@]}" -qq source "onetbb=$version" >&2) || {
    echo "sanitize.sh: Debian's archive no longer has onetbb $version (the installed libtbb-dev);" \
         "upgrade it (apt-get install --only-upgrade libtbb-dev) and run again" >&2
    exit 1
  }
  # TBB_STRICT=OFF: GCC warns (-Wtsan) that TSan ignores atomic_thread_fence, and oneTBB's
  # strict mode makes warnings errors. Only libtbb: the project does not use tbbmalloc.
  cmake -S "$dir/onetbb-${version%%-*}" -B "$dir/build" "${generator[@]}" "${launcher[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTBB_SANITIZE=thread -DTBB_STRICT=OFF -DTBB_TEST=OFF \
    -DTBB_EXAMPLES=OFF -DTBBMALLOC_BUILD=OFF -DCMAKE_INSTALL_PREFIX="$prefix" >"$dir/cmake.log" 2>&1 ||
    { cat "$dir/cmake.log" >&2; exit 1; }
  cmake --build "$dir/build" --parallel "$jobs" >>"$dir/cmake.log" 2>&1 || { tail -50 "$dir/cmake.log" >&2; exit 1; }
  cmake --install "$dir/build" >/dev/null
  echo "$prefix"
}

# -O1 -g: compiles faster than -O2 and keeps stacks readable. The allocation test is left
# out (it defines malloc, which the sanitizer's runtime must own). MPI is left out too:
# Open MPI's own allocations and threads are not the project's to sanitize, and a build
# without it is what tests mpi.sh's refusal to run as one of several processes.
case "$mode" in
  address)
    # _GLIBCXX_ASSERTIONS: bounds checks in std containers, within their capacity too.
    flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -D_GLIBCXX_ASSERTIONS"
    extra=() ;;
  thread)
    flags="-fsanitize=thread -fno-omit-frame-pointer"
    tbb_prefix=$(build_tsan_onetbb)
    extra=(-DTBB_DIR="$tbb_prefix/lib/cmake/TBB") ;;
esac
stamp "configure $build"
cmake -S "$src" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" \
  -DCMAKE_MODULE_LINKER_FLAGS="$flags" -DBACKPLANE_ALLOC_TESTS=OFF -DBACKPLANE_MPI=OFF "${extra[@]}" >/dev/null
stamp "build (log: $build/build.log)"
targets=()   # address: everything ctest runs; thread: the two executables it tests
[ "$mode" = address ] || targets=(--target backplane_tests backplane)
cmake --build "$build" --parallel "$jobs" "${targets[@]}" >"$build/build.log" 2>&1 ||
  { tail -50 "$build/build.log"; echo "sanitize.sh: the build failed" >&2; exit 1; }
if [ "$mode" = thread ]; then
  # The instrumented libtbb must be the one the tests load (RUNPATH from TBB_DIR).
  libs=$(ldd "$build/bin/backplane_tests")
  grep -q "libtbb.so.12 => $tbb_prefix/" <<<"$libs" ||
    { echo "sanitize.sh: backplane_tests does not load $tbb_prefix's libtbb:" >&2; echo "$libs" >&2; exit 1; }
fi

reports=$build/sanitizer-reports
rm -rf "$reports" "$build/tmp"
mkdir -p "$reports" "$build/tmp"
# Tests' temporary folders under the build folder: another build's tests running at the
# same time on this machine use the same /tmp/backplane-test-* names.
export TMPDIR=$build/tmp
status=0
stamp "test"
case "$mode" in
  address)
    # detect_stack_use_after_return: tasks capture the caller's locals by reference.
    export ASAN_OPTIONS="log_path=$reports/asan:exitcode=86:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:strict_init_order=1"
    # GCC 12's UBSan inside ASan's runtime ignores log_path (ASan's and its own; clang 14's
    # honours it): its reports go to stderr, and the process exits 86 (so each test's
    # expected exit status fails), and any that reach ctest's log are caught below.
    export UBSAN_OPTIONS="exitcode=86:print_stacktrace=1:halt_on_error=1"
    # Plugins built during the tests (tests/install.sh: out of tree, against the installed
    # package) are built with the same sanitizers: CMake takes these as its initial flags.
    export CXXFLAGS="$flags" LDFLAGS="$flags"
    # ... through ccache, which finds them again in their fresh mktemp folders when paths
    # are taken relative to TMPDIR (install_and_plugins: 107 s cold, 25 s warm).
    if command -v ccache >/dev/null; then export CMAKE_CXX_COMPILER_LAUNCHER=ccache CCACHE_BASEDIR=$TMPDIR; fi
    # tests/cli.sh's killed-and-resumed run: 1500 epochs twice took 6 minutes under ASan;
    # 150 still run several seconds, long enough to be killed mid-run.
    export BACKPLANE_CLI_RESUME_EPOCHS=150
    (cd "$build" && ctest --output-on-failure --parallel "$jobs" "$@") || status=$?
    # Every test's whole output is in LastTest.log.
    if grep -E -A30 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$build/Testing/Temporary/LastTest.log" \
         >"$reports/from-ctest-log"; then :; else rm -f "$reports/from-ctest-log"; fi
    ;;
  thread)
    export TSAN_OPTIONS="log_path=$reports/tsan:exitcode=66:halt_on_error=0:second_deadlock_stack=1"
    # The code that runs on several threads: the trainer's shards (forward, backward,
    # gradient reduction), the optimizers' pieces, the layers with shard state (batch norm,
    # dropout) at 1, 2 and 8 threads, the checkpointed runs and comparisons run 3 at a time.
    spec=${1:-"[trainer],[determinism],[compare],[layers],[optimizers],[checkpoint],[idx]"}
    "$build/bin/backplane_tests" "$spec" || status=$?
    # A comparison through the CLI, 3 runs at a time in one shared arena.
    "$build/bin/backplane" run "$src/experiments/compare_optimizers_spirals.yaml" --jobs 3 --quiet \
      --out "$TMPDIR/compare" --set train.epochs=3 --set 'compare.seeds=[1, 2]' || status=$?
    ;;
esac
stamp "done"
if compgen -G "$reports/*" >/dev/null; then
  echo "sanitize.sh: $(ls "$reports" | wc -l) sanitizer report file(s):"
  for f in "$reports"/*; do echo "--- $f"; cat "$f"; done
  exit 1
fi
[ "$status" -eq 0 ] || { echo "sanitize.sh: tests failed (status $status)"; exit 1; }
echo "sanitize.sh $mode: no sanitizer reports, all tests passed"
