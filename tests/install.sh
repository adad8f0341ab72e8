#!/usr/bin/env bash
# The plugin author's path, as docs/writing-plugins.md tells it: install Backplane into
# a fresh prefix; build sdk/examples/custom (two layers, one of them a merge, and an activation) and a scaffold
# of every kind out of tree against that prefix alone; check-plugin each; train with
# each through `plugins:`. A plugin with a wrong gradient must fail check-plugin by name.
# Usage: install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
bp=$prefix/bin/backplane
[ -x "$bp" ] && [ -f "$prefix/lib/cmake/Backplane/BackplaneConfigVersion.cmake" ] &&
  [ -f "$prefix/include/backplane/version.hpp" ] || { echo "FAIL: incomplete install"; exit 1; }

fail() { echo "FAIL: $*"; exit 1; }
build_plugin() {   # build_plugin DIR: configure and build against the prefix only
  cmake -S "$1" -B "$1/build" -DCMAKE_PREFIX_PATH="$prefix" >"$work/cmake.log" 2>&1 &&
    cmake --build "$1/build" >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "building $1"; }
}
accuracy() { sed -n 's/.*"train_accuracy": \([0-9.]*\).*/\1/p' "$1/summary.json" | head -1; }

# The example: a custom layer (rms_norm), a custom merge layer (gate) and a custom activation (swish).
cp -r "$src/sdk/examples/custom" "$work/custom"
build_plugin "$work/custom"
"$bp" check-plugin "$work/custom/build/libmy-components.so" >"$work/check.log" || { cat "$work/check.log"; fail "example check-plugin"; }
grep -q 'all 3 components passed' "$work/check.log" || fail "example: not every component passed"
"$bp" run "$work/custom/custom-spirals.yaml" --out "$work/custom-run" --quiet
acc=$(accuracy "$work/custom-run")
echo "custom-spirals (rms_norm + gate + swish) train accuracy: $acc"
awk -v a="$acc" 'BEGIN { exit !(a >= 0.99) }' || fail "custom-spirals reached only $acc"

# A scaffold of each kind builds, passes check-plugin and trains as written.
for kind in layer activation loss optimizer; do
  name=my_$kind
  (cd "$work" && "$bp" new-plugin "$name" --kind "$kind" >/dev/null)
  grep -q "HINTS \"$prefix\"" "$work/$name/CMakeLists.txt" || fail "$name: CMakeLists.txt does not point at the prefix"
  cmake -S "$work/$name" -B "$work/$name/build" >"$work/cmake.log" 2>&1 && cmake --build "$work/$name/build" >>"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log"; fail "building the $kind scaffold as written"; }
  "$bp" check-plugin "$work/$name/build/lib$name.so" >"$work/check.log" || { cat "$work/check.log"; fail "$kind scaffold check-plugin"; }
  "$bp" run "$work/$name/$name-example.yaml" --out "$work/$name-run" --quiet
  grep -q '"status": "completed"' "$work/$name-run/summary.json" || fail "$kind scaffold's example did not complete"
  if [ "$kind" != loss ]; then
    acc=$(accuracy "$work/$name-run")
    awk -v a="$acc" 'BEGIN { exit !(a >= 0.95) }' || fail "$kind scaffold's example reached only $acc"
  fi
  echo "new-plugin --kind $kind: built, checked, trained"
done
(cd "$work" && "$bp" new-plugin my_layer --kind layer >/dev/null 2>"$work/err") && fail "new-plugin overwrote a project"
grep -q 'already holds files' "$work/err" || fail "new-plugin into a full folder: $(cat "$work/err")"

# An optimizer that updates in parallel on the trainer's threads (tbb::parallel_for, as
# docs/writing-plugins.md suggests): Backplane::sdk brings oneTBB with it.
mkdir "$work/parallel"
cat >"$work/parallel/parallel_sgd.cpp" <<'CPP'
#include <backplane/backplane.hpp>
#include <tbb/parallel_for.h>
namespace {
class ParallelSgd final : public bp::Optimizer {
public:
    explicit ParallelSgd(const bp::Params& p) : lr_(p.number("lr")) {}
    void step(std::span<bp::ParameterRef> params) override {
        tbb::parallel_for(std::size_t(0), params.size(), [&](std::size_t i) { params[i].value -= float(lr_) * params[i].grad; });
    }
    double learning_rate() const override { return lr_; }
    void set_learning_rate(double lr) override { lr_ = lr; }
private:
    double lr_;
};
}  // namespace
BACKPLANE_PLUGIN("parallel-sgd", "1.0") {
    manifest.optimizer<ParallelSgd>("parallel_sgd", "sgd, one tensor per task",
                                    bp::Schema().number("lr", 0.1, 0.0, 10.0, "learning rate"));
}
CPP
printf 'cmake_minimum_required(VERSION 3.22)\nproject(parallel CXX)\nfind_package(Backplane REQUIRED)\nbackplane_add_plugin(parallel SOURCES parallel_sgd.cpp)\n' \
  >"$work/parallel/CMakeLists.txt"
build_plugin "$work/parallel"
# Linked to oneTBB itself, not leaning on the backplane executable's copy.
readelf -d "$work/parallel/build/libparallel.so" | grep -q 'NEEDED.*libtbb' || fail "parallel_sgd is not linked to oneTBB"
"$bp" check-plugin "$work/parallel/build/libparallel.so" >"$work/check.log" || { cat "$work/check.log"; fail "parallel_sgd check-plugin"; }
echo "a plugin using oneTBB builds against the package alone and passes check-plugin"

# A plugin with a wrong gradient and an optimizer that loses its state on resume.
mkdir "$work/bad"
cp "$src/tests/broken_plugins/bad_gradient.cpp" "$work/bad/"
printf 'cmake_minimum_required(VERSION 3.22)\nproject(bad CXX)\nfind_package(Backplane REQUIRED)\nbackplane_add_plugin(bad SOURCES bad_gradient.cpp)\n' \
  >"$work/bad/CMakeLists.txt"
build_plugin "$work/bad"
if "$bp" check-plugin "$work/bad/build/libbad.so" >"$work/check.log" 2>"$work/err"; then fail "check-plugin passed a wrong gradient"; fi
grep -q 'activation bad_tanh, optimizer forgetful_momentum' "$work/err" || fail "check-plugin did not name the bad components: $(cat "$work/err")"
echo "check-plugin refuses a wrong gradient and a lost optimizer state, by name"
