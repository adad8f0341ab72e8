// Experiment files: every bad input is one clear error with file:line:column.
#include "model/experiment.hpp"
#include "helpers.hpp"
#include "train/run.hpp"

namespace {

const std::string good = R"(name: t
seed: 7
data: { source: two_spirals, samples: 64 }
model:
  - dense: { units: 8, activation: relu }
  - tanh
  - dense: { units: 2 }
loss: softmax_cross_entropy
optimizer: { name: sgd, lr: 0.1 }
train:
  epochs: 2
  batch_size: 16
)";

bp::Experiment parse(const std::string& text, const std::vector<std::string>& sets = {}) {
    return bp::parse_experiment(text, "/exp/bad.yaml", sets, test::builtin_registry());
}

std::string error_parsing(const std::string& text, const std::vector<std::string>& sets = {}) {
    return test::error_of([&] { parse(text, sets); });
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
    const auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("a valid experiment is read with defaults filled", "[experiment]") {
    const auto e = parse(good);
    CHECK(e.name == "t");
    CHECK(e.seed == 7);
    REQUIRE(e.model.size() == 3);
    CHECK(e.model[0].component.kind == bp::Kind::layer);
    CHECK(e.model[0].component.params.integer("units") == 8);
    CHECK(e.model[0].component.params.text("init") == "he");   // default
    CHECK(e.model[1].component.kind == bp::Kind::activation);
    CHECK(e.optimizer.params.number("lr") == 0.1);
    CHECK(e.optimizer.params.number("momentum") == 0.0);
    CHECK(e.train.epochs == 2);
    CHECK(e.train.shard_size == 32);
}

TEST_CASE("the resolved config reads back to the same experiment", "[experiment]") {
    const auto e = parse(good);
    const auto again = parse(bp::to_yaml(e));
    CHECK(bp::to_yaml(again) == bp::to_yaml(e));
    CHECK(again.model[0].component.params.values() == e.model[0].component.params.values());
    CHECK(again.optimizer.params.values() == e.optimizer.params.values());
}

TEST_CASE("overrides (--set) reach any key", "[experiment]") {
    const auto e = parse(replace(good, "- tanh", "- leaky_relu"),
                         {"train.epochs=5", "optimizer.momentum=0.9", "model.0.units=12", "model.1.slope=0.25"});
    CHECK(e.train.epochs == 5);
    CHECK(e.optimizer.params.number("momentum") == 0.9);
    CHECK(e.model[0].component.params.integer("units") == 12);
    CHECK(e.model[1].component.params.number("slope") == 0.25);
    CHECK(e.model[2].component.params.integer("units") == 2);
}

TEST_CASE("overrides (--set) turn a bare name into a component and accept threads=auto", "[experiment]") {
    const auto e = parse(good, {"loss=mse", "train.threads=auto", "seed=11"});
    CHECK(e.loss.name == "mse");
    const auto named = parse(replace(good, "optimizer: { name: sgd, lr: 0.1 }", "optimizer: sgd"), {"optimizer.lr=0.5"});
    CHECK(named.optimizer.name == "sgd");
    CHECK(named.optimizer.params.number("lr") == 0.5);
    CHECK(e.train.threads == 0);
    CHECK(e.seed == 11);
}

TEST_CASE("a YAML syntax error gives line and column", "[experiment]") {
    const auto msg = error_parsing("name: t\nmodel: [dense\nloss: mse\n");
    CHECK_THAT(msg, Catch::StartsWith("/exp/bad.yaml:3:") && Catch::Contains("YAML syntax error"));
}

TEST_CASE("an unknown key is named with a suggestion", "[experiment]") {
    CHECK(error_parsing(replace(good, "train:", "trian:")) ==
          "/exp/bad.yaml:10:1: unknown key 'trian' in the experiment (did you mean 'train'?); allowed: name, seed, "
          "data, blocks, model, init_from, loss, optimizer, train, plugins, compare");
    CHECK_THAT(error_parsing(replace(good, "epochs: 2", "epoch: 2")),
               Catch::StartsWith("/exp/bad.yaml:11:3: unknown key 'epoch' in train (did you mean 'epochs'?)"));
    CHECK_THAT(error_parsing(replace(good, "units: 8,", "unit: 8,")),
               Catch::StartsWith("/exp/bad.yaml:5:14: unknown key 'unit' in model[0] (dense) (did you mean 'units'?)"));
}

TEST_CASE("a wrong type names the key and the value", "[experiment]") {
    CHECK(error_parsing(replace(good, "epochs: 2", "epochs: ten")) ==
          "/exp/bad.yaml:11:11: train.epochs must be an integer, got 'ten'");
    CHECK(error_parsing(replace(good, "lr: 0.1", "lr: fast")) ==
          "/exp/bad.yaml:9:29: optimizer (sgd).lr must be a number, got 'fast'");
    CHECK(error_parsing(replace(good, "units: 8,", "units: [8],")) ==
          "/exp/bad.yaml:5:21: model[0] (dense).units must be an integer, got a list");
}

TEST_CASE("an out-of-range value shows the range", "[experiment]") {
    CHECK(error_parsing(replace(good, "lr: 0.1", "lr: -1")) ==
          "/exp/bad.yaml:9:29: optimizer (sgd).lr = -1 is out of range [0, 1000]");
    CHECK(error_parsing(replace(good, "batch_size: 16", "batch_size: 0")) ==
          "/exp/bad.yaml:12:15: train.batch_size = 0 is out of range [1, 1048576]");
    CHECK_THAT(error_parsing(replace(good, "activation: relu", "activation: rlu")),
               Catch::StartsWith("/exp/bad.yaml:5:36: model[0] (dense).activation: unknown activation 'rlu' "
                                 "(did you mean 'relu'?)"));
}

TEST_CASE("an unknown component lists the known ones", "[experiment]") {
    CHECK(error_parsing(replace(good, "- tanh", "- tahn")) ==
          "/exp/bad.yaml:6:5: unknown layer 'tahn' (did you mean 'tanh'?); known layers: add, avg_pool2d, batch_norm, concat, conv2d, dense, dropout, embedding, flatten, global_avg_pool, "
          "gru, layer_norm, lstm, max_pool2d, multi_head_attention, multiply, positional_embedding; activations usable "
          "as layers: gelu, identity, leaky_relu, relu, sigmoid, softmax, tanh");
    CHECK(error_parsing(replace(good, "loss: softmax_cross_entropy", "loss: softmax_crossentropy")) ==
          "/exp/bad.yaml:8:7: unknown loss 'softmax_crossentropy' (did you mean 'softmax_cross_entropy'?); known "
          "losses: binary_cross_entropy, mse, softmax_cross_entropy");
    CHECK_THAT(error_parsing(replace(good, "name: sgd", "name: adamx")),
               Catch::StartsWith("/exp/bad.yaml:9:20: unknown optimizer 'adamx' (did you mean 'adam'?)"));
    CHECK_THAT(error_parsing(replace(good, "source: two_spirals", "source: spirals")),
               Catch::StartsWith("/exp/bad.yaml:3:17: unknown dataset 'spirals' (did you mean 'two_spirals'?)"));
}

TEST_CASE("a key that is not a plain name is refused", "[experiment]") {
    CHECK(error_parsing(replace(good, "seed: 7", "[seed]: 7")) == "/exp/bad.yaml:2:1: a key in the experiment must be a plain name");
}

TEST_CASE("missing sections are named", "[experiment]") {
    CHECK(error_parsing("name: t\n") == "/exp/bad.yaml:1:1: the experiment needs 'data'");
    CHECK(error_parsing("data: {source: xor}\nmodel: []\nloss: mse\noptimizer: sgd\n") ==
          "/exp/bad.yaml:2:8: model must be a non-empty list of layers");
}

TEST_CASE("a bad --set names the override", "[experiment]") {
    CHECK(error_parsing(good, {"train.epochs=abc"}) == "--set train.epochs=abc: train.epochs must be an integer, got 'abc'");
    CHECK_THAT(error_parsing(good, {"train.epoch=3"}), Catch::Contains("unknown key 'epoch' in train"));
    CHECK_THAT(error_parsing(good, {"train"}), Catch::Contains("expected KEY.PATH=VALUE"));
    CHECK_THAT(error_parsing(good, {"model.9.units=3"}), Catch::Contains("index 9 is past the end"));
}

TEST_CASE("incompatible shapes are found before training, naming the layer", "[experiment]") {
    const auto e = parse(replace(good, "- dense: { units: 2 }", "- dense: { units: 3 }"));
    const auto msg = test::error_of([&] { bp::prepare_run(e, test::builtin_registry()); });
    CHECK(msg == "/exp/bad.yaml:8:7: softmax_cross_entropy needs one logit per class: the model must output 2 values "
                 "per sample, got [3] (the last layer, 2.dense, outputs [3])");
    const auto bce = parse(replace(good, "loss: softmax_cross_entropy", "loss: binary_cross_entropy"));
    CHECK_THAT(test::error_of([&] { bp::prepare_run(bce, test::builtin_registry()); }),
               Catch::Contains("binary_cross_entropy needs one logit per target column"));
}

TEST_CASE("a csv dataset is read relative to the experiment file", "[experiment]") {
    const auto dir = test::temp_dir("csv");
    test::write_file(dir / "data.csv", "a,b,label\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n");
    test::write_file(dir / "bad.csv", "a,b,label\n0,0,0\n0,x,1\n");
    const std::string text = replace(good, "{ source: two_spirals, samples: 64 }", "{ source: csv, path: data.csv }");
    const auto e = bp::parse_experiment(text, dir / "e.yaml", {}, test::builtin_registry());
    const auto p = bp::prepare_run(e, test::builtin_registry());
    CHECK(p.data.train.x.rows() == 4);
    CHECK(p.data.target.classes == 2);
    CHECK(p.data.train.y(1, 0) == 1);
    const auto bad = bp::parse_experiment(replace(text, "data.csv", "bad.csv"), dir / "e.yaml", {}, test::builtin_registry());
    CHECK_THAT(test::error_of([&] { bp::prepare_run(bad, test::builtin_registry()); }),
               Catch::Contains("bad.csv:3: 'x' is not a number"));
    const auto missing = bp::parse_experiment(replace(text, "data.csv", "nope.csv"), dir / "e.yaml", {}, test::builtin_registry());
    CHECK_THAT(test::error_of([&] { bp::prepare_run(missing, test::builtin_registry()); }),
               Catch::Contains("cannot open") && Catch::Contains("nope.csv"));
}

TEST_CASE("a key given twice is refused, naming both places", "[experiment]") {
    // yaml-cpp keeps both entries and answers lookups with the first: the second
    // would be dropped without a word.
    CHECK(error_parsing(good + "model:\n  - dense: { units: 2 }\n") ==
          "/exp/bad.yaml:13:1: 'model' is given twice in the experiment (first at line 4); remove one");
    CHECK(error_parsing(replace(good, "epochs: 2", "epochs: 2\n  epochs: 3")) ==
          "/exp/bad.yaml:12:3: 'epochs' is given twice in train (first at line 11); remove one");
    CHECK_THAT(error_parsing(replace(good, "units: 8,", "units: 8, units: 9,")),
               Catch::StartsWith("/exp/bad.yaml:5:24: 'units' is given twice in model.0.dense (first at line 5)"));
}

TEST_CASE("an unknown key from --set names the override", "[experiment]") {
    CHECK(error_parsing(good, {"train.epochz=3"}) ==
          "--set train.epochz=3: unknown key 'epochz' in train (did you mean 'epochs'?); allowed: epochs, batch_size, "
          "shard_size, threads, shuffle, checkpoint_every, best_metric, patience, diagnostics_every");
    CHECK_THAT(error_parsing(good, {"optimizer.moment=0.9"}),
               Catch::StartsWith("--set optimizer.moment=0.9: unknown key 'moment' in optimizer (sgd) (did you mean "
                                 "'momentum'?)"));
}

// No ';' in a test's name: CMake cuts the name there, and ctest then asks Catch for a test
// that does not exist (this one passed that way, unrun, until --warn NoTests).
TEST_CASE("metrics have one name each, and the old spellings are refused with the new one", "[experiment]") {
    CHECK(parse(good, {"train.best_metric=val_accuracy", "data.validation_split=0.25"}).train.best_metric ==
          "val_accuracy");
    CHECK_THAT(error_parsing(good, {"train.best_metric=validation_loss"}),
               Catch::StartsWith("--set train.best_metric=validation_loss: train.best_metric = 'validation_loss' is "
                                 "not one of: auto, train_loss, train_accuracy, val_loss, val_accuracy, test_loss, "
                                 "test_accuracy (did you mean 'val_loss'?)"));
    CHECK_THAT(error_parsing(good, {"optimizer.schedule={name: reduce_on_plateau, metric: validation_accuracy}"}),
               Catch::Contains("(did you mean 'val_accuracy'?)"));
}
