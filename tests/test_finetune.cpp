// Fine-tuning and parameter groups: trainable: false, lr_scale, init_from, and what an
// optimizer learns of each parameter (its node, role and lr_scale).
#include "helpers.hpp"
#include "model/experiment.hpp"
#include "train/checkpoint.hpp"
#include "train/run.hpp"

#include <backplane/plugin.hpp>

namespace fs = std::filesystem;

namespace {

std::string experiment(const std::string& model, const std::string& extra = "") {
    return "name: ft\nseed: 4\ndata: { source: gaussian, shape: 2x4x4, samples: 240, classes: 3 }\nmodel:\n" + model +
           extra + "loss: softmax_cross_entropy\noptimizer: { name: adam, lr: 0.01 }\n"
                   "train: { epochs: 2, batch_size: 40, shard_size: 8 }\n";
}

bp::Experiment parse(const std::string& text, const fs::path& file = "/exp/ft.yaml") {
    return bp::parse_experiment(text, file, {}, test::builtin_registry());
}

const std::string model = "  - { conv2d: { filters: 3, kernel: 3, padding: 1 }, name: stem }\n  - batch_norm\n"
                          "  - relu\n  - flatten\n  - { dense: { units: 3 }, name: head }\n";

// Three steps of optimizer `name` on one weight and one bias tensor: the weight, then the bias.
std::pair<bp::Matrix, bp::Matrix> steps(const std::string& name, const std::map<std::string, bp::Value>& set,
                                        float lr_scale, bool zero_gradient = false) {
    auto& registry = test::builtin_registry();
    bp::Params params = bp::Params::defaults(registry.get(bp::Kind::optimizer, name).info->schema);
    for (const auto& [k, v] : set) params.set(k, v);
    auto opt = registry.create<bp::Optimizer>(name, params);
    bp::Matrix w(2, 3), b(1, 3), gw(2, 3), gb(1, 3);
    w << 1, -2, 0.5, 0.25, -1, 3;
    b << 0.5, -0.5, 2;
    const std::string wn = "0.dense.weight", bn = "0.dense.bias", node = "0.dense";
    std::vector<bp::ParameterRef> refs{{wn, w, gw, node, bp::ParameterRole::weight, lr_scale},
                                       {bn, b, gb, node, bp::ParameterRole::bias, lr_scale}};
    for (int s = 0; s < 3; ++s) {
        for (int i = 0; i < gw.size(); ++i) gw.data()[i] = zero_gradient ? 0.0f : 0.1f * float(i - s);
        for (int i = 0; i < gb.size(); ++i) gb.data()[i] = zero_gradient ? 0.0f : -0.2f * float(i + s);
        opt->step(refs);
    }
    return {w, b};
}

}  // namespace

TEST_CASE("a parameter's lr_scale scales every optimizer's rate, to the bit", "[finetune][optimizers]") {
    auto& registry = test::builtin_registry();
    for (const auto& name : registry.names(bp::Kind::optimizer)) {
        INFO(name);
        const double lr = std::get<double>(bp::Params::defaults(registry.get(bp::Kind::optimizer, name).info->schema)
                                               .values().at("lr"));
        const std::map<std::string, bp::Value> decay{{"weight_decay", 0.1}};
        const auto scaled = steps(name, decay, 0.25f);
        auto set = decay;
        set["lr"] = lr * 0.25;
        const auto direct = steps(name, set, 1.0f);
        CHECK(scaled.first == direct.first);
        CHECK(scaled.second == direct.second);
        // lr_scale 0 leaves the parameters as they were.
        const auto frozen = steps(name, decay, 0.0f);
        CHECK(frozen.first == steps("sgd", {{"lr", 0.0}}, 1.0f).first);
    }
}

TEST_CASE("decay: weights leaves biases and norms out of weight decay, coupled or decoupled", "[finetune][optimizers]") {
    for (const std::string name : {"sgd", "adamw", "lion"}) {
        INFO(name);
        const auto start = steps("sgd", {{"lr", 0.0}}, 1.0f);   // the values before any step
        const auto all = steps(name, {{"weight_decay", 0.5}, {"lr", 0.1}}, 1.0f, true);
        const auto weights = steps(name, {{"weight_decay", 0.5}, {"lr", 0.1}, {"decay", std::string("weights")}}, 1.0f, true);
        // With zero gradients only the decay moves anything.
        CHECK(all.first != start.first);
        CHECK(all.second != start.second);
        CHECK(weights.first == all.first);
        CHECK(weights.second == start.second);
    }
}

TEST_CASE("trainable: false keeps an entry's parameters, and the optimizer never sees them", "[finetune]") {
    const std::string frozen_stem = "  - { conv2d: { filters: 3, kernel: 3, padding: 1 }, name: stem, trainable: false }\n"
                                    "  - batch_norm\n  - relu\n  - flatten\n  - { dense: { units: 3 }, name: head }\n";
    const auto out = test::temp_dir("ft-0");
    const auto before = test::run_quietly(parse(experiment(frozen_stem), "/exp/ft.yaml"), out);
    // The stem's weight and bias are the first two parameters: as initialised, after two epochs.
    bp::Experiment e = parse(experiment(frozen_stem));
    bp::PreparedRun fresh = bp::prepare_run(e, test::builtin_registry());
    const auto initial = fresh.network->parameters();
    CHECK(before.weights[0] == *initial[0].value);
    CHECK(before.weights[1] == *initial[1].value);
    CHECK(before.weights[4] != *initial[4].value);   // the head learned
    // Its optimizer state holds the trainable tensors only: batch norm's two and the head's two.
    const bp::Checkpoint c = bp::load_checkpoint(out / "checkpoints" / "last.safetensors");
    int moments = 0;
    for (const auto& t : c.tensors) moments += t.name.rfind("optimizer.m.", 0) == 0;
    CHECK(moments == 4);
}

TEST_CASE("init_from starts the named entries from another run's weights", "[finetune]") {
    const auto dir = test::temp_dir("ft-init");
    const auto source = test::run_quietly(parse(experiment(model)), dir / "source");
    // Another seed, the stem (and only the stem) from the source run, frozen.
    const std::string tuned = "  - { conv2d: { filters: 3, kernel: 3, padding: 1 }, name: stem, trainable: false }\n"
                              "  - batch_norm\n  - relu\n  - flatten\n  - { dense: { units: 3 }, name: head }\n";
    const auto file = test::write_file(dir / "tuned.yaml", experiment(tuned, "init_from: { checkpoint: source, nodes: [stem] }\n"));
    bp::Experiment e = bp::load_experiment(file, {"seed=9"}, test::builtin_registry());
    const auto run = test::run_quietly(e, dir / "tuned");
    CHECK(run.weights[0] == source.weights[0]);
    CHECK(run.weights[1] == source.weights[1]);
    bp::PreparedRun fresh = bp::prepare_run(e, test::builtin_registry());
    CHECK(*fresh.network->parameters()[4].value != source.weights[4]);   // the head starts from seed 9
    // The resolved config names the checkpoint, and reads back to the same experiment.
    CHECK(bp::to_yaml(bp::parse_experiment(bp::to_yaml(e), file, {}, test::builtin_registry())) == bp::to_yaml(e));

    // Errors: an entry the model has not, a checkpoint of another shape, no checkpoint.
    auto error = [&](const std::string& model_text, const std::string& init) {
        const auto f = test::write_file(dir / "bad.yaml", experiment(model_text, "init_from: " + init + "\n"));
        return test::error_of([&] { bp::prepare_run(bp::load_experiment(f, {}, test::builtin_registry()), test::builtin_registry()); });
    };
    CHECK(error(model, "{ checkpoint: source, nodes: [stme] }") ==
          (dir / "bad.yaml").string() + ":10:12: init_from.nodes: 'stme' is no entry of the model (did you mean 'stem'?)");
    const std::string wider = "  - { conv2d: { filters: 5, kernel: 3, padding: 1 }, name: stem }\n  - batch_norm\n"
                              "  - relu\n  - flatten\n  - { dense: { units: 3 }, name: head }\n";
    CHECK(error(wider, "{ checkpoint: source }") ==
          (dir / "bad.yaml").string() + ":10:12: init_from: checkpoint " + (dir / "source/checkpoints/last.safetensors").string() +
              " does not fit: stem.weight is 3x18 there, 5x18 here; stem.bias is 1x3 there, 1x5 here; 1.batch_norm.weight "
              "is 1x3 there, 1x5 here; 1.batch_norm.bias is 1x3 there, 1x5 here; head.weight is 48x3 there, 80x3 here; "
              "1.batch_norm.running_mean is 1x3 there, 1x5 here; 1.batch_norm.running_var is 1x3 there, 1x5 here");
    CHECK_THAT(error(model, "{ checkpoint: nowhere.safetensors }"),
               Catch::StartsWith((dir / "bad.yaml").string() + ":10:12: init_from: "));
}

TEST_CASE("a frozen entry before every trainable one gets no backward", "[finetune][trainer]") {
    // tests/broken_plugins/backward_probe.cpp: scale_probe fails unless dx has rows exactly when expected.
    bp::Registry registry;
    registry.load_path(bp::builtin_plugin_dir());
    const fs::path probe = fs::path(BACKPLANE_TEST_PLUGINS) / "backward_probe" / "libbackward_probe.so";
    const auto dir = test::temp_dir("ft-probe");
    const auto file = test::write_file(
        dir / "e.yaml", "name: probe\nplugins: [" + probe.string() +
                            "]\ndata: {source: gaussian, shape: 2x3x3, samples: 64, classes: 2}\nmodel:\n"
                            "  - { dense: {units: 4}, trainable: false }\n  - scale_probe: {expect_dx: false}\n"
                            "  - dense: {units: 2}\nloss: softmax_cross_entropy\noptimizer: sgd\ntrain: {epochs: 1, batch_size: 16}\n");
    bp::RunOptions options;
    options.out = dir / "run";
    options.quiet = true;
    std::ostringstream log;
    CHECK(test::error_of([&] { bp::run_experiment(bp::load_experiment(file, {}, registry), registry, options, log); }) == "");
}

TEST_CASE("a fine-tuned run resumes from its own checkpoint, without init_from's", "[finetune][checkpoint]") {
    const auto dir = test::temp_dir("ft-resume");
    test::run_quietly(parse(experiment(model)), dir / "source");
    const auto file = test::write_file(dir / "tuned.yaml", experiment(model, "init_from: { checkpoint: source }\n"));
    const bp::Experiment e = bp::load_experiment(file, {"train.epochs=3"}, test::builtin_registry());
    const auto whole = test::run_quietly(e, dir / "whole");
    bp::RunOptions options;
    options.out = dir / "cut";
    options.quiet = true;
    options.stop_after = 1;
    std::ostringstream log;
    bp::run_experiment(e, test::builtin_registry(), options, log);
    fs::remove_all(dir / "source");   // gone: the resume must not need it
    const auto resumed = test::run_quietly(e, {}, dir / "cut");
    CHECK(resumed.fingerprint == whole.fingerprint);
}
