// Checkpoints: safetensors round trip, resume equivalence (4 epochs straight equal
// 2, stop, resume, 2 more, bitwise, as Caffe's TestSnapshot), and bad checkpoints.
#include "train/checkpoint.hpp"
#include "model/experiment.hpp"
#include "helpers.hpp"
#include "train/run.hpp"

#include <nlohmann/json.hpp>

#include <sstream>

namespace fs = std::filesystem;

namespace {

// Dropout, batch norm and Adam: every kind of state a resume must restore.
const std::string experiment = R"(name: resume
seed: 3
data: { source: two_spirals, samples: 600, validation_split: 0.2 }
model:
  - dense: { units: 24 }
  - batch_norm
  - tanh
  - dropout: { rate: 0.1 }
  - dense: { units: 2 }
loss: softmax_cross_entropy
optimizer: { name: adam, lr: 0.01 }
train: { epochs: 4, batch_size: 40, shard_size: 16, checkpoint_every: 2 }
)";

bp::RunResult run(const fs::path& dir, const std::vector<std::string>& sets, const fs::path& resume = {}) {
    auto& registry = test::builtin_registry();
    return test::run_quietly(bp::parse_experiment(experiment, dir / "resume.yaml", sets, registry), dir / "run", resume);
}

}  // namespace

TEST_CASE("a checkpoint round-trips bitwise, readable as safetensors", "[checkpoint]") {
    const auto dir = test::temp_dir("ckpt-roundtrip");
    bp::Checkpoint c;
    bp::Matrix a(3, 4), b(1, 5);
    for (int i = 0; i < 12; ++i) a.data()[i] = float(i) * 0.1f - 0.35f;
    b << 1e-30f, -0.0f, 3.4e38f, 7, 1.0f / 3;
    c.tensors = {{"a", a}, {"b", b}};
    c.metadata = {{"epoch", "3"}, {"config", "name: x\n"}};
    bp::save_checkpoint(dir / "c.safetensors", c);
    const auto back = bp::load_checkpoint(dir / "c.safetensors");
    REQUIRE(back.tensors.size() == 2);
    CHECK(back.find("a")->value == a);
    CHECK(back.find("b")->value == b);
    CHECK(back.metadata == c.metadata);

    // The layout a Python reader expects: 8-byte length, JSON, F32 data at the offsets.
    const std::string bytes = test::read_file(dir / "c.safetensors");
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    const auto header = nlohmann::json::parse(bytes.substr(8, n));
    CHECK(header["a"]["dtype"] == "F32");
    CHECK(header["a"]["shape"] == nlohmann::json({3, 4}));
    const auto off = header["b"]["data_offsets"].get<std::vector<std::size_t>>();
    float third = 0;
    std::memcpy(&third, bytes.data() + 8 + n + off[0] + 4 * sizeof(float), sizeof(float));
    CHECK(third == 1.0f / 3);
    CHECK(bytes.size() == 8 + n + 17 * sizeof(float));
}

TEST_CASE("4 epochs straight equal 2 epochs, stop, resume, 2 more: bitwise", "[checkpoint][determinism]") {
    const auto straight = run(test::temp_dir("resume-straight"), {});
    const auto dir = test::temp_dir("resume-broken");
    const auto half = run(dir, {"train.epochs=2"});
    CHECK(half.history.size() == 2);
    const auto resumed = run(dir, {}, dir / "run");
    REQUIRE(resumed.history.size() == 4);
    CHECK(resumed.fingerprint == straight.fingerprint);
    for (std::size_t i = 0; i < straight.weights.size(); ++i) CHECK(resumed.weights[i] == straight.weights[i]);
    for (std::size_t i = 0; i < 4; ++i) {
        CHECK(resumed.history[i].train.loss == straight.history[i].train.loss);
        CHECK(resumed.history[i].validation.accuracy == straight.history[i].validation.accuracy);
    }
    // last, best and every checkpoint_every epochs.
    for (const char* f : {"last", "best", "epoch-0002", "epoch-0004"})
        CHECK(fs::exists(dir / "run" / "checkpoints" / (std::string(f) + ".safetensors")));
    std::istringstream csv(test::read_file(dir / "run" / "metrics.csv"));
    int lines = 0;
    for (std::string l; std::getline(csv, l);) ++lines;
    CHECK(lines == 5);
}

TEST_CASE("a bad checkpoint is refused by name and nothing is overwritten", "[checkpoint]") {
    const auto dir = test::temp_dir("resume-bad");
    run(dir, {"train.epochs=1"});
    const fs::path last = dir / "run" / "checkpoints" / "last.safetensors";
    const std::string metrics = test::read_file(dir / "run" / "metrics.csv");
    const std::string good = test::read_file(last);

    // Another experiment (tests/test_run_files.cpp lists the changes).
    CHECK_THAT(test::error_of([&] { run(dir, {"model.0.units=8"}, dir / "run"); }),
               Catch::Contains("was made by another experiment: model.0.dense.units: 24 -> 8"));

    test::write_file(last, good.substr(0, good.size() - 10));
    CHECK_THAT(test::error_of([&] { run(dir, {}, dir / "run"); }),
               Catch::Contains(last.string()) && Catch::Contains("truncated"));
    test::write_file(last, good.substr(0, 5));
    CHECK_THAT(test::error_of([&] { run(dir, {}, dir / "run"); }), Catch::Contains("too short"));
    std::string corrupt = good;
    corrupt[9] = '#';
    test::write_file(last, corrupt);
    CHECK_THAT(test::error_of([&] { run(dir, {}, dir / "run"); }), Catch::Contains("not valid JSON"));
    fs::remove(last);
    CHECK_THAT(test::error_of([&] { run(dir, {}, dir / "run"); }), Catch::Contains("cannot open"));

    CHECK(test::read_file(dir / "run" / "metrics.csv") == metrics);
}

TEST_CASE("a best_metric the run cannot produce is refused before training", "[checkpoint]") {
    const auto dir = test::temp_dir("best-metric");
    CHECK_THAT(test::error_of([&] { run(dir, {"train.best_metric=test_accuracy"}); }),
               Catch::Contains("train.best_metric is test_accuracy, but the run has no test set"));
    CHECK_THAT(test::error_of([&] { run(dir, {"train.best_metric=val_loss", "data.validation_split=0"}); }),
               Catch::Contains("no validation split"));
    CHECK_FALSE(fs::exists(dir / "run"));
}

TEST_CASE("eval reports test metrics and the confusion matrix of a saved run", "[checkpoint][idx]") {
    auto& registry = test::builtin_registry();
    const auto e = bp::load_experiment(fs::path(BACKPLANE_EXPERIMENTS) / "fashion_mnist_mlp.yaml",
                                       {"data.limit=2000", "data.test_limit=500", "train.epochs=1"}, registry);
    const auto r = test::run_quietly(e, test::temp_dir("eval-run"));
    // A model the checkpoint does not fit: every tensor that differs, nothing changed.
    CHECK_THAT(test::error_of([&] { bp::evaluate_checkpoint(r.dir, {"model.1.units=64"}, registry); }),
               Catch::Contains("does not fit this model") &&
                   Catch::Contains("model.1.dense.weight is 784x512, the model's 784x64") &&
                   Catch::Contains("model.3.dense.weight is 512x256, the model's 64x256"));
    const auto ev = bp::evaluate_checkpoint(r.dir, {}, registry);
    CHECK(ev.epoch == 1);
    CHECK(ev.test.accuracy == r.history.back().test.accuracy);
    CHECK(ev.test.loss == r.history.back().test.loss);
    REQUIRE(ev.confusion.rows() == 10);
    CHECK(ev.confusion.sum() == 500);
    CHECK(double(ev.confusion.trace()) / 500 == Approx(ev.test.accuracy));

    const auto summary = nlohmann::json::parse(test::read_file(r.dir / "summary.json"));
    const auto matrix = summary["test"]["confusion_matrix"];
    REQUIRE(matrix.size() == 10);
    int total = 0;
    for (std::size_t c = 0; c < 10; ++c)
        for (std::size_t p = 0; p < 10; ++p) {
            CHECK(matrix[c][p] == ev.confusion(c, p));
            total += matrix[c][p].get<int>();
        }
    CHECK(total == 500);
    CHECK(summary["test"]["per_class_accuracy"].size() == 10);
    CHECK(summary["final"]["test_accuracy"].get<double>() == ev.test.accuracy);
}
