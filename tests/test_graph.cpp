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
          "/exp/g.yaml:6:7: the model has a cycle: a -> b -> a (each reads the one before); a node cannot read its own output");
    CHECK(error_parsing(experiment("  - flatten\n  - { dense: { units: 4 }, name: a, inputs: [a] }\n"
                                   "  - dense: { units: 3 }\n"))
              .find("the model has a cycle: a -> a") != std::string::npos);
    // A node nothing reads.
    CHECK(error_parsing(experiment("  - { flatten: {}, name: flat }\n  - { dense: { units: 4 }, name: lost }\n"
                                   "  - { dense: { units: 3 }, inputs: [flat] }\n")) ==
          "/exp/g.yaml:6:7: model[1] 'lost' (dense) is read by no entry, so its output would be lost: name it in a "
          "later entry's inputs, or remove it (the last entry, model[2] (dense), is the model's output)");
    // A name given twice, a name that is not an identifier, an entry naming two layers.
    CHECK(error_parsing(experiment("  - { flatten: {}, name: x }\n  - { dense: { units: 3 }, name: x }\n")) ==
          "/exp/g.yaml:6:7: model[1] 'x' (dense): the name 'x' is taken by model[0] 'x' (flatten) at /exp/g.yaml:5:7; "
          "names must differ");
    CHECK(error_parsing(experiment("  - { flatten: {}, name: input }\n  - dense: { units: 3 }\n"))
              .find("/exp/g.yaml:5:26: model[0].name 'input' must be a lowercase identifier") == 0);
    CHECK(error_parsing(experiment("  - { flatten: {}, relu: {} }\n  - dense: { units: 3 }\n")) ==
          "/exp/g.yaml:5:5: model[0] must name one layer or block, e.g. '- dense: {units: 64}', with at most name, "
          "inputs, repeat, trainable, lr_scale beside it; it names flatten, relu");
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
    // Wider than the gradient check's, so that a shard outlasts a worker's wake-up and
    // every thread takes part.
    std::string wide = residual;
    for (std::size_t at; (at = wide.find("filters: 4")) != std::string::npos;) wide.replace(at, 10, "filters: 24");
    const std::string text = experiment(wide, "{ source: gaussian, shape: 4x10x10, samples: 600, classes: 3, "
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

namespace {

// A residual block, used twice by name and once repeated.
const std::string blocks = R"(blocks:
  res:
    parameters: { filters: 4, kernel: 3 }
    model:
      - conv2d: { filters: $filters, kernel: $kernel, padding: 1 }
        name: conv_a
      - relu
      - conv2d: { filters: 4, kernel: 3, padding: 1 }
      - add:
        inputs: [input, 2.conv2d]
)";

std::string with_blocks(const std::string& model, const std::string& block_text = blocks) {
    return block_text + experiment(model);
}

}  // namespace

TEST_CASE("a model with blocks is the graph they expand to, to the bit, with stable names", "[graph][blocks]") {
    const std::string used = "  - { conv2d: { filters: 4, kernel: 3, padding: 1 }, name: stem }\n"
                             "  - { res: {}, name: stage1, repeat: 2 }\n"
                             "  - { res: { filters: 6 }, name: last }\n  - flatten\n  - dense: { units: 3 }\n";
    // The same graph written out, entry by entry.
    std::string flat = "  - { conv2d: { filters: 4, kernel: 3, padding: 1 }, name: stem }\n";
    for (const std::string p : {"b1", "b2", "c"}) {
        const std::string filters = p == "c" ? "6" : "4";
        flat += "  - { conv2d: { filters: " + filters + ", kernel: 3, padding: 1 }, name: " + p + "_a }\n  - relu\n"
                "  - { conv2d: { filters: 4, kernel: 3, padding: 1 }, name: " + p + "_c }\n"
                "  - { add: {}, name: " + p + ", inputs: [" + (p == "b1" ? "stem" : p == "b2" ? "b1" : "b2") + ", " + p +
                "_c] }\n";
    }
    flat += "  - flatten\n  - dense: { units: 3 }\n";
    const auto a = train(with_blocks(used), "blocks");
    const auto b = train(experiment(flat), "flat");
    CHECK(a.fingerprint == b.fingerprint);

    const auto net = network_of(with_blocks(used));
    std::vector<std::string> names;
    for (const auto& p : net->parameters()) names.push_back(p.name);
    CHECK(names[2] == "stage1.block1.conv_a.weight");
    CHECK(names[4] == "stage1.block1.2.conv2d.weight");
    CHECK(names[6] == "stage1.block2.conv_a.weight");
    CHECK(names[10] == "last.conv_a.weight");
    CHECK(net->layers()[12].label == "last.3.add");
}

TEST_CASE("a block's parameter is set per use and by --set on the use's entry", "[graph][blocks]") {
    const std::string used = "  - res: { filters: 6 }\n  - res\n  - flatten\n  - dense: { units: 3 }\n";
    const auto net = network_of(with_blocks(used));
    CHECK(net->layers()[0].output == bp::Shape{6, 3, 3});
    CHECK(net->layers()[4].output == bp::Shape{4, 3, 3});   // the second use: the default
    const auto e = parse(with_blocks(used), {"model.1.filters=6"});
    CHECK(e.model[4].component.params.integer("filters") == 6);
    CHECK(e.model[4].name == "res_1.conv_a");   // an unnamed use: its block and place
}

TEST_CASE("the resolved config of a model with blocks runs again to the same bits", "[graph][blocks]") {
    const std::string used = "  - { res: {}, name: s, repeat: 2 }\n  - flatten\n  - dense: { units: 3 }\n";
    const auto e = parse(with_blocks(used));
    const auto again = parse(bp::to_yaml(e));
    REQUIRE(again.model.size() == e.model.size());
    for (std::size_t i = 0; i < e.model.size(); ++i) {
        CHECK(again.model[i].label(i) == e.model[i].label(i));
        REQUIRE(again.model[i].inputs.size() == e.model[i].inputs.size());
        for (std::size_t k = 0; k < e.model[i].inputs.size(); ++k)
            CHECK(again.model[i].inputs[k].source == e.model[i].inputs[k].source);
    }
    CHECK(test::run_quietly(e, test::temp_dir("blocks-a")).fingerprint ==
          test::run_quietly(again, test::temp_dir("blocks-b")).fingerprint);
}

TEST_CASE("every block error is one message at its place", "[graph][blocks][errors]") {
    // A parameter the block does not declare, at the use and in the block's own model.
    CHECK(error_parsing(with_blocks("  - res: { filtres: 8 }\n  - flatten\n  - dense: { units: 3 }\n")) ==
          "/exp/g.yaml:15:12: block 'res' has no parameter 'filtres' (did you mean 'filters'?); it takes filters, kernel");
    CHECK(error_parsing(with_blocks("  - res\n  - flatten\n  - dense: { units: 3 }\n",
                                    "blocks:\n  res:\n    model:\n      - conv2d: { filters: $width }\n")) ==
          "/exp/g.yaml:4:28: block 'res' has no parameter 'width'; it declares none");
    // A block that uses itself, through another.
    CHECK(error_parsing(with_blocks("  - a\n  - flatten\n  - dense: { units: 3 }\n",
                                    "blocks:\n  a:\n    model: [ b ]\n  b:\n    model: [ relu, a ]\n")) ==
          "/exp/g.yaml:5:20: block 'a' uses itself: a -> b -> a");
    // A block named like a layer, a repeated layer, a use given two inputs.
    CHECK(error_parsing(with_blocks("  - relu\n  - flatten\n  - dense: { units: 3 }\n",
                                    "blocks:\n  dense:\n    model: [ relu ]\n"))
              .find("/exp/g.yaml:2:3: block 'dense' has the name of a layer") == 0);
    CHECK(error_parsing(experiment("  - { relu: {}, repeat: 2 }\n  - flatten\n  - dense: { units: 3 }\n")) ==
          "/exp/g.yaml:5:25: model[0].repeat repeats a block; 'relu' is a layer");
    CHECK(error_parsing(with_blocks("  - { relu: {}, name: a }\n  - { res: {}, inputs: [a, a] }\n  - flatten\n"
                                    "  - dense: { units: 3 }\n")) ==
          "/exp/g.yaml:16:7: model[1] uses block 'res', which reads one input (its 'input'); it is given 2");
    // Inside a block, names are the block's own: an unknown one is named qualified.
    CHECK(error_parsing(with_blocks("  - { res: {}, name: s }\n  - flatten\n  - dense: { units: 3 }\n",
                                    "blocks:\n  res:\n    model:\n      - relu\n      - { add: {}, inputs: [input, rleu] }\n")) ==
          "/exp/g.yaml:5:36: 's.1.add' (add in block res) reads 'rleu', which no entry of its block is named; names: "
          "input, 0.relu, 1.add ('input' is the block's input)");
    // A wrong value through a parameter points at the value.
    CHECK(error_parsing(with_blocks("  - res: { filters: many }\n  - flatten\n  - dense: { units: 3 }\n")) ==
          "/exp/g.yaml:15:21: blocks.res.model[0] (conv2d).filters must be an integer, got 'many'");
}

TEST_CASE("names in inputs: an empty one, and a use's input, are refused at their place", "[graph][blocks][errors]") {
    CHECK(error_parsing(experiment("  - { flatten: {}, name: a }\n  - { dense: { units: 3 }, inputs: [a, \"\"] }\n")) ==
          "/exp/g.yaml:6:40: model[1].inputs: an empty name names no entry");
    // The name a use reads is checked where the use wrote it, not inside the block.
    CHECK(error_parsing(with_blocks("  - { conv2d: { filters: 4, kernel: 1 }, name: stem }\n  - { res: {}, inputs: [stme] }\n"
                                    "  - flatten\n  - dense: { units: 3 }\n"))
              .find("/exp/g.yaml:16:25: 'res_1.conv_a' (conv2d in block res) reads 'stme', which no entry is named "
                    "(did you mean 'stem'?)") == 0);
    // Blocks named like an entry's own keys, or nested past the limit.
    CHECK(error_parsing(with_blocks("  - relu\n  - flatten\n  - dense: { units: 3 }\n", "blocks:\n  repeat:\n    model: [ relu ]\n"))
              .find("/exp/g.yaml:2:3: block 'repeat' has the name of a model entry's own key") == 0);
    std::string deep = "blocks:\n";
    for (int b = 0; b < 40; ++b) deep += "  b" + std::to_string(b) + ":\n    model: [ " + (b == 39 ? "relu" : "b" + std::to_string(b + 1)) + " ]\n";
    CHECK(error_parsing(with_blocks("  - b0\n  - flatten\n  - dense: { units: 3 }\n", deep)).find("blocks nest more than 32 deep") !=
          std::string::npos);
}

TEST_CASE("an override reaches an entry's own keys (--set model.1.trainable=false), not its layer's", "[graph][finetune]") {
    const auto e = parse(experiment("  - flatten\n  - dense: { units: 3 }\n"), {"model.1.trainable=false", "model.1.lr_scale=0.5",
                                                                             "model.0.name=flat"});
    CHECK_FALSE(e.model[1].trainable);
    CHECK(e.model[1].lr_scale == 0.5);
    CHECK(e.model[0].name == "flat");
}

TEST_CASE("the network gradient check leaves frozen entries out", "[graph][gradients][finetune]") {
    const auto net = network_of(experiment("  - { conv2d: { filters: 4, kernel: 3, padding: 1 }, name: stem, trainable: false }\n"
                                           "  - relu\n  - { add: {}, inputs: [stem, 1.relu] }\n  - flatten\n  - dense: { units: 3 }\n"));
    const auto r = bp::check_network(*net, 1);
    INFO(r.report());
    CHECK(r.passed());
    CHECK(r.checked == 111);   // the dense layer's 108 weights and 3 biases
}
