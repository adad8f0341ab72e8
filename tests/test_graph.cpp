// Models as graphs: name: and inputs:, merge layers, gradients through branches and
// fan-out, every graph error at its place, and chains unchanged.
#include "model/experiment.hpp"
#include "helpers.hpp"
#include "tools/gradient_check.hpp"
#include "train/run.hpp"

namespace fs = std::filesystem;

namespace {

// An experiment around `model` (YAML list lines) on 4x3x3 images.
std::string experiment(const std::string& model, const std::string& data = "{ source: gaussian, shape: 4x3x3, "
                                                                           "samples: 200, classes: 3 }") {
    return "name: g\nseed: 3\ndata: " + data + "\nmodel:\n" + model +
           "loss: softmax_cross_entropy\noptimizer: { name: adam, lr: 0.01 }\ntrain: { epochs: 2, batch_size: 40, "
           "shard_size: 8 }\n";
}

bp::Experiment parse(const std::string& text, const std::vector<std::string>& sets = {}) {
    return bp::parse_experiment(text, "/exp/g.yaml", sets, test::builtin_registry());
}

std::string error_parsing(const std::string& text) {
    return test::error_of([&] { parse(text); });
}

// Builds the network of `text` on its data's input shape, as a run would.
std::unique_ptr<bp::Network> network_of(const std::string& text) {
    return std::move(bp::prepare_run(parse(text), test::builtin_registry()).network);
}

bp::RunResult train(const std::string& text, const std::string& name, const std::vector<std::string>& sets = {}) {
    return test::run_quietly(parse(text, sets), test::temp_dir("graph-" + name));
}

// A residual block with batch norm and a concat / multiply branch pair.
const std::string residual = R"(  - { conv2d: { filters: 4, kernel: 3, padding: 1 }, name: stem }
  - conv2d: { filters: 4, kernel: 3, padding: 1 }
  - batch_norm
  - relu
  - { conv2d: { filters: 4, kernel: 3, padding: 1 }, name: branch }
  - { add: {}, name: sum, inputs: [stem, branch] }
  - { conv2d: { filters: 2, kernel: 1 }, name: left }
  - { conv2d: { filters: 3, kernel: 1 }, name: right, inputs: [sum] }
  - { concat: {}, name: joined, inputs: [left, right, stem] }
  - { tanh: {}, name: gate, inputs: [joined] }
  - { multiply: {}, inputs: [joined, gate] }
  - flatten
  - dense: { units: 3 }
)";

}  // namespace

TEST_CASE("a chain written with names and inputs is the same chain, to the bit", "[graph]") {
    const std::string chain = "  - conv2d: { filters: 4, kernel: 3 }\n  - relu\n  - flatten\n  - dense: { units: 3 }\n";
    const std::string named = "  - { conv2d: { filters: 4, kernel: 3 }, name: conv, inputs: [input] }\n"
                              "  - { relu: {}, inputs: [conv] }\n  - flatten\n  - dense: { units: 3 }\n";
    const auto a = train(experiment(chain), "chain");
    const auto b = train(experiment(named), "named");
    CHECK(a.fingerprint == b.fingerprint);
    CHECK(a.history.back().train.loss == b.history.back().train.loss);
}

TEST_CASE("gradients through a residual block, concat and multiply branches and fan-out match finite differences",
          "[graph][gradients]") {
    // stem feeds sum, concat and (through sum) right: three readers whose gradients are summed.
    const auto net = network_of(experiment(residual));
    REQUIRE(net->layers().size() == 13);
    for (uint64_t seed : {1, 2}) {
        const auto r = bp::check_network(*net, seed);
        INFO(r.report());
        CHECK(r.passed());
        CHECK(r.checked > 400);
    }
}

TEST_CASE("a node read twice by one merge gets both gradients", "[graph][gradients]") {
    const auto net = network_of(experiment("  - { flatten: {}, name: flat }\n  - { dense: { units: 5 }, name: fc }\n"
                                           "  - { multiply: {}, name: square, inputs: [fc, fc] }\n  - { add: {}, inputs: [fc, square, fc] }\n"
                                           "  - dense: { units: 3 }\n"));
    const auto r = bp::check_network(*net, 1);
    INFO(r.report());
    CHECK(r.passed());
    CHECK(r.checked > 100);
}

TEST_CASE("every graph error is one message at its place", "[graph][errors]") {
    // An input no entry has, with a suggestion.
    CHECK(error_parsing(experiment("  - { flatten: {}, name: flat }\n  - { dense: { units: 3 }, inputs: [flta] }\n")) ==
          "/exp/g.yaml:6:37: model[1] (dense) reads 'flta', which no entry is named (did you mean 'flat'?); names: "
          "input, flat ('input' is the network's input)");
    // A cycle, its nodes named in the order data flows.
    CHECK(error_parsing(experiment("  - flatten\n  - { dense: { units: 4 }, name: a, inputs: [b] }\n"
                                   "  - { dense: { units: 4 }, name: b, inputs: [a] }\n  - dense: { units: 3 }\n")) ==
          "/exp/g.yaml:6:5: the model has a cycle: a -> b -> a (each reads the one before); a node cannot read its own output");
    CHECK(error_parsing(experiment("  - flatten\n  - { dense: { units: 4 }, name: a, inputs: [a] }\n"
                                   "  - dense: { units: 3 }\n"))
              .find("the model has a cycle: a -> a") != std::string::npos);
    // A node nothing reads.
    CHECK(error_parsing(experiment("  - { flatten: {}, name: flat }\n  - { dense: { units: 4 }, name: lost }\n"
                                   "  - { dense: { units: 3 }, inputs: [flat] }\n")) ==
          "/exp/g.yaml:6:5: model[1] 'lost' (dense) is read by no entry, so its output would be lost: name it in a "
          "later entry's inputs, or remove it (the last entry, model[2] (dense), is the model's output)");
    // A name given twice, a name that is not an identifier, an entry naming two layers.
    CHECK(error_parsing(experiment("  - { flatten: {}, name: x }\n  - { dense: { units: 3 }, name: x }\n")) ==
          "/exp/g.yaml:6:5: model[1] is named 'x', as model[0] 'x' (flatten) at /exp/g.yaml:5:7 is: names must differ");
    CHECK(error_parsing(experiment("  - { flatten: {}, name: input }\n  - dense: { units: 3 }\n"))
              .find("/exp/g.yaml:5:26: model[0].name 'input' must be a lowercase identifier") == 0);
    CHECK(error_parsing(experiment("  - { flatten: {}, relu: {} }\n  - dense: { units: 3 }\n")) ==
          "/exp/g.yaml:5:5: model[0] must name one layer, e.g. '- dense: {units: 64}', with at most name, inputs "
          "beside it; it names flatten, relu");
    CHECK(error_parsing(experiment("  - { flatten: {}, inputs: [] }\n  - dense: { units: 3 }\n")) ==
          "/exp/g.yaml:5:28: model[0].inputs must be a non-empty list of entry names, e.g. [conv_a, shortcut]");
}

TEST_CASE("a shape mismatch at a merge names both shapes and both producers", "[graph][errors]") {
    const std::string text = experiment("  - { conv2d: { filters: 8, kernel: 3, padding: 1 }, name: wide }\n"
                                        "  - { conv2d: { filters: 4, kernel: 3, padding: 1 }, name: narrow, inputs: [input] }\n"
                                        "  - { add: {}, inputs: [wide, narrow] }\n  - flatten\n  - dense: { units: 3 }\n");
    CHECK(test::error_of([&] { network_of(text); }) ==
          "/exp/g.yaml:7:7: model[2] (add) with inputs [8, 3, 3] from wide, [4, 3, 3] from narrow: add needs inputs "
          "of one shape, but input 2 is [4, 3, 3] and input 1 is [8, 3, 3]");
    // A one-input layer given two.
    CHECK(test::error_of([&] { network_of(experiment("  - { flatten: {}, name: a }\n  - { flatten: {}, name: b, inputs: [input] }\n"
                                                     "  - { dense: { units: 3 }, inputs: [a, b] }\n")); }) ==
          "/exp/g.yaml:7:7: model[2] (dense) with inputs [36] from a, [36] from b: takes one input, but the model "
          "gives it 2 (a layer reading several derives from bp::MergeLayer)");
}

TEST_CASE("a graph model trains bitwise identically at 1, 2 and 8 threads", "[graph][determinism]") {
    const std::string text = experiment(residual, "{ source: gaussian, shape: 4x3x3, samples: 600, classes: 3, "
                                                  "validation_split: 0.2 }");
    auto with_threads = [&](int t) {
        return train(text, "threads-" + std::to_string(t), {"train.threads=" + std::to_string(t), "train.epochs=3"});
    };
    const auto one = with_threads(1);
    for (int t : {2, 8}) {
        const auto other = with_threads(t);
        INFO(t << " threads");
        CHECK(other.threads_used > 1);
        CHECK(other.fingerprint == one.fingerprint);
        REQUIRE(other.history.size() == one.history.size());
        for (std::size_t i = 0; i < one.history.size(); ++i) {
            CHECK(other.history[i].train.loss == one.history[i].train.loss);
            CHECK(other.history[i].validation.loss == one.history[i].validation.loss);
        }
    }
}

TEST_CASE("experiments/spirals_residual.yaml reaches 99% training accuracy", "[graph][e2e]") {
    auto& registry = test::builtin_registry();
    const auto r = test::run_quietly(bp::load_experiment(fs::path(BACKPLANE_EXPERIMENTS) / "spirals_residual.yaml", {},
                                                         registry),
                                     test::temp_dir("spirals-residual"));
    CHECK(r.history.back().train.accuracy >= 0.99);
}
