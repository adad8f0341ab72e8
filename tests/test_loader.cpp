// Plugin loading: the built-ins load, and each broken library gets a clear error
// naming the file.
#include "helpers.hpp"
#include "tools/isolation_check.hpp"

#include <atomic>

#include <backplane/plugin.hpp>

namespace fs = std::filesystem;

namespace {

// Built by tests/CMakeLists.txt, each in its own folder.
fs::path broken(const std::string& name) {
    return fs::path(BACKPLANE_TEST_PLUGINS) / name / ("lib" + name + ".so");
}

bp::Registry with_builtins() {
    bp::Registry r;
    r.load_path(bp::builtin_plugin_dir());
    return r;
}

}  // namespace

TEST_CASE("the built-in plugins provide every component of the spine", "[loader]") {
    auto& r = test::builtin_registry();
    const std::map<bp::Kind, std::vector<std::string>> expected = {
        {bp::Kind::layer,
         {"add", "avg_pool2d", "batch_norm", "concat", "conv2d", "dense", "dropout", "embedding", "flatten",
          "global_avg_pool", "gru", "layer_norm", "lstm", "max_pool2d", "multi_head_attention", "multiply", "positional_embedding"}},
        {bp::Kind::activation, {"gelu", "identity", "leaky_relu", "relu", "sigmoid", "softmax", "tanh"}},
        {bp::Kind::loss, {"binary_cross_entropy", "mse", "softmax_cross_entropy"}},
        {bp::Kind::optimizer, {"adagrad", "adam", "adamw", "lion", "nadam", "rmsprop", "sgd"}},
        {bp::Kind::dataset, {"csv", "gaussian", "idx", "sine", "text", "two_spirals", "xor"}},
        {bp::Kind::schedule, {"constant", "cosine", "exponential", "multistep", "reduce_on_plateau", "step"}},
    };
    for (const auto& [kind, names] : expected) CHECK(r.names(kind) == names);
    for (const auto& lib : r.libraries()) {
        CHECK(!lib->manifest->plugin.empty());
        CHECK(!lib->manifest->version.empty());
    }
}

TEST_CASE("a file that is not a shared library is refused by name", "[loader]") {
    const auto dir = test::temp_dir("not-a-library");
    const auto file = test::write_file(dir / "libfake.so", "this is text, not ELF\n");
    bp::Registry r;
    const auto msg = test::error_of([&] { r.load_path(dir); });
    CHECK_THAT(msg, Catch::Contains(file.string()) && Catch::Contains("not a loadable shared library"));
}

TEST_CASE("a library without the entry point is refused", "[loader]") {
    bp::Registry r;
    const auto msg = test::error_of([&] { r.load_library(broken("no_entry")); });
    CHECK_THAT(msg, Catch::Contains("libno_entry.so") && Catch::Contains("no entry point 'backplane_abi_version'"));
}

TEST_CASE("an ABI mismatch shows both versions", "[loader]") {
    bp::Registry r;
    const auto msg = test::error_of([&] { r.load_library(broken("wrong_abi")); });
    CHECK_THAT(msg, Catch::Contains("libwrong_abi.so") && Catch::Contains("built for ABI 999") &&
                        Catch::Contains("built against Backplane SDK 9.9.0") &&
                        Catch::Contains("supports ABI " + std::to_string(BACKPLANE_ABI_VERSION)));
}

TEST_CASE("a plugin built against an older SDK is told to rebuild", "[loader]") {
    bp::Registry r;
    const auto msg = test::error_of([&] { r.load_library(broken("old_abi")); });
    CHECK_THAT(msg, Catch::Contains("a Backplane SDK older than 0.2.0 (built for ABI 4)") &&
                        Catch::Contains("Rebuild the plugin against this Backplane's SDK (find_package(Backplane " BACKPLANE_VERSION));
}

TEST_CASE("a plugin whose registration throws is refused", "[loader]") {
    bp::Registry r;
    const auto msg = test::error_of([&] { r.load_library(broken("throwing_register")); });
    CHECK_THAT(msg, Catch::Contains("libthrowing_register.so") && Catch::Contains("registration exploded"));
    CHECK(r.libraries().empty());
}

TEST_CASE("a throwing factory names the component and the library", "[loader]") {
    bp::Registry r;
    r.load_library(broken("throwing_factory"));
    const auto msg = test::error_of([&] { r.create<bp::Layer>("exploding", bp::Params{}); });
    CHECK_THAT(msg, Catch::Contains("layer 'exploding'") && Catch::Contains("libthrowing_factory.so") &&
                        Catch::Contains("constructor exploded"));
}

TEST_CASE("two libraries cannot claim one component name", "[loader]") {
    bp::Registry r = with_builtins();
    const auto msg = test::error_of([&] { r.load_library(broken("duplicate")); });
    CHECK_THAT(msg, Catch::Contains("libduplicate.so") && Catch::Contains("activation 'relu'") &&
                        Catch::Contains("libbackplane-activations.so"));
    // Nothing of the refused library was registered.
    CHECK(r.get(bp::Kind::activation, "relu").library->path.filename() == "libbackplane-activations.so");
}

TEST_CASE("loading the same library twice is harmless", "[loader]") {
    bp::Registry r = with_builtins();
    const auto count = r.libraries().size();
    r.load_path(bp::builtin_plugin_dir());
    CHECK(r.libraries().size() == count);
}

TEST_CASE("an unknown component lists the known ones with a suggestion", "[loader]") {
    const auto msg = test::error_of([] { test::builtin_registry().get(bp::Kind::activation, "rleu"); });
    CHECK(msg == "unknown activation 'rleu' (did you mean 'relu'?); known activations: gelu, identity, leaky_relu, "
                 "relu, sigmoid, softmax, tanh");
}

TEST_CASE("objects keep their library loaded", "[loader]") {
    std::shared_ptr<bp::Activation> relu;
    {
        bp::Registry r = with_builtins();
        relu = r.create<bp::Activation>("relu", bp::Params{});
    }
    // The registry is gone; the object's code must still be mapped.
    bp::Matrix x(1, 2), y(1, 2);
    x << -1, 2;
    relu->forward(x, y);
    CHECK(y(0, 0) == 0);
    CHECK(y(0, 1) == 2);
}

namespace {

struct NothingLayer final : bp::Layer {
    bp::Shape build(const bp::Shape& input, const bp::Random&) override { return input; }
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext&) const override { y = x; }
    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx, std::span<bp::Matrix>,
                  bp::Workspace*, const bp::StepContext&) const override {
        if (dx.rows()) dx = dy;
    }
};

// Throws from forward once the isolation check runs it on its threads (after 6 calls).
struct ThrowingLayer final : bp::Layer {
    mutable std::atomic<int> calls{0};
    bp::Shape build(const bp::Shape& input, const bp::Random&) override { return input; }
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext&) const override {
        if (calls++ >= 6) throw bp::Error("forward failed");   // after the runs alone and interleaved
        y = x;
    }
    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx, std::span<bp::Matrix>,
                  bp::Workspace*, const bp::StepContext&) const override {
        if (dx.rows()) dx = dy;
    }
};

struct NothingOptimizer final : bp::Optimizer {
    void step(std::span<bp::ParameterRef>) override {}
    double learning_rate() const override { return 0; }
    void set_learning_rate(double) override {}
};

std::string manifest_error(const std::string& name, const bp::Schema& schema) {
    bp::Manifest m{"p", "1.0", {}};
    m.layer<NothingLayer>(name, "a layer", schema);
    return test::error_of([&] { bp::check_manifest(m); });
}

}  // namespace

TEST_CASE("a manifest the core could not use is refused by component and parameter", "[loader]") {
    CHECK(manifest_error("nothing", bp::Schema().integer("units", 3, 1, 10, "n")) == "");
    CHECK_THAT(manifest_error("My Layer", {}), Catch::StartsWith("layer 'My Layer': a component's name is lowercase"));
    CHECK_THAT(manifest_error("x", bp::Schema().integer("units", 30, 1, 10, "n")),
               Catch::StartsWith("layer 'x': parameter 'units': its default 30 is outside its range"));
    CHECK_THAT(manifest_error("x", bp::Schema().number("rate", 0.5, 1.0, 0.0, "r")),
               Catch::Contains("its range is not a finite [min, max]"));
    CHECK_THAT(manifest_error("x", bp::Schema().choice("mode", "c", {"a", "b"}, "m")),
               Catch::Contains("parameter 'mode': its default 'c' is not one of its choices"));
    CHECK_THAT(manifest_error("x", bp::Schema().choice("mode", "", {}, "m")), Catch::Contains("it has no choices"));
    CHECK_THAT(manifest_error("x", bp::Schema().boolean("on", true, "o").boolean("on", false, "o")),
               Catch::Contains("parameter 'on' is declared twice"));
    CHECK_THAT(manifest_error("x", bp::Schema().text("train.epochs", "", "t")), Catch::Contains("a parameter's name is"));
    bp::Manifest twice{"p", "1.0", {}};
    twice.layer<NothingLayer>("same", "a", {}).layer<NothingLayer>("same", "b", {});
    CHECK(test::error_of([&] { bp::check_manifest(twice); }) == "layer 'same' is registered twice");
    bp::Manifest unchecked{"p", "1.0", {}};
    unchecked.layer<NothingLayer>("bare", "b", {}, {});
    CHECK_THAT(test::error_of([&] { bp::check_manifest(unchecked); }),
               Catch::StartsWith("layer 'bare' gives no check cases: check-plugin builds it on each case's input shape"));
    // A model entry reads `name:` and `inputs:` beside its layer: no layer may be called so.
    CHECK(manifest_error("inputs", {}) == "layer 'inputs': a model entry uses the key 'inputs' itself (beside its "
                                          "layer); name the component otherwise");
    bp::Manifest reserved{"p", "1.0", {}};
    reserved.optimizer<NothingOptimizer>("opt", "o", bp::Schema().text("schedule", "", "s"));
    CHECK(test::error_of([&] { bp::check_manifest(reserved); }) ==
          "optimizer 'opt': parameter 'schedule': the experiment file uses that key itself where this component's "
          "parameters stand; rename it");
}

TEST_CASE("a layer that throws on the isolation check's threads is an error, not a crash or a hang", "[loader][certify]") {
    ThrowingLayer layer;
    CHECK(test::error_of([&] { bp::isolation_problem(layer, {bp::Shape{3}}, 1, true); }) == "forward failed");
}
