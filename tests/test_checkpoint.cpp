// Checkpoints: safetensors round trip, resume equivalence (4 epochs straight equal
// 2, stop, resume, 2 more, bitwise, as Caffe's TestSnapshot), and bad checkpoints.
#include "train/checkpoint.hpp"
#include "model/experiment.hpp"
#include "helpers.hpp"
#include "train/run.hpp"

#include <nlohmann/json.hpp>

#include <cstring>
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

// A safetensors file made by hand: 8-byte length, `header` as JSON, `data_bytes` zero bytes.
std::string safetensors(const nlohmann::json& header, std::size_t data_bytes) {
    const std::string json = header.dump();
    std::string out(8, '\0');
    const uint64_t n = json.size();
    std::memcpy(out.data(), &n, 8);
    return out + json + std::string(data_bytes, '\0');
}

nlohmann::json f32(const std::vector<int64_t>& shape, std::size_t begin, std::size_t end) {
    return {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {begin, end}}};
}

// The message load_checkpoint throws for `bytes` written to a file, or "".
std::string load_error(const std::string& bytes) {
    const auto file = test::temp_dir("ckpt-bad") / "bad.safetensors";
    test::write_file(file, bytes);
    return test::error_of([&] { bp::load_checkpoint(file); });
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

TEST_CASE("empty tensors round-trip like any other", "[checkpoint]") {
    // An optimizer's state or a layer's buffer may be empty; a checkpoint that holds one
    // must load again, or the run could not resume.
    const auto dir = test::temp_dir("ckpt-empty");
    bp::Checkpoint c;
    c.tensors = {{"none", bp::Matrix(0, 0)}, {"a", bp::Matrix::Constant(2, 2, 1.5f)}, {"rows", bp::Matrix(0, 3)},
                 {"b", bp::Matrix::Constant(1, 1, -2.0f)}};
    bp::save_checkpoint(dir / "c.safetensors", c);
    const auto back = bp::load_checkpoint(dir / "c.safetensors");
    REQUIRE(back.tensors.size() == 4);
    for (std::size_t i = 0; i < 4; ++i) {
        CHECK(back.tensors[i].name == c.tensors[i].name);
        CHECK(back.tensors[i].value.rows() == c.tensors[i].value.rows());
        CHECK(back.tensors[i].value.cols() == c.tensors[i].value.cols());
        CHECK(back.tensors[i].value == c.tensors[i].value);
    }
}

TEST_CASE("tensors come back in file order, not name order", "[checkpoint]") {
    // An optimizer's load_state gets its state in the order state() gave it:
    // velocity.10 must not come before velocity.2.
    const auto dir = test::temp_dir("ckpt-order");
    bp::Checkpoint c;
    for (int i = 0; i < 12; ++i) c.tensors.push_back({"x." + std::to_string(i), bp::Matrix::Constant(1, 2, float(i))});
    bp::save_checkpoint(dir / "c.safetensors", c);
    const auto back = bp::load_checkpoint(dir / "c.safetensors");
    REQUIRE(back.tensors.size() == 12);
    for (int i = 0; i < 12; ++i) {
        CHECK(back.tensors[std::size_t(i)].name == "x." + std::to_string(i));
        CHECK(back.tensors[std::size_t(i)].value(0, 1) == float(i));
    }
}

TEST_CASE("tensors must tile the data section exactly", "[checkpoint]") {
    // Sorted by offset, each begins where the one before ends, the first at 0, the
    // last at the end of the data: anything else is a corrupt or hand-made file.
    using J = nlohmann::json;
    CHECK_THAT(load_error(safetensors(J{{"a", f32({4}, 0, 16)}, {"b", f32({4}, 8, 24)}}, 24)),
               Catch::Contains("bad.safetensors") && Catch::Contains("tensor 'b'") && Catch::Contains("overlaps tensor 'a'"));
    CHECK_THAT(load_error(safetensors(J{{"a", f32({4}, 0, 16)}, {"b", f32({4}, 20, 36)}}, 36)),
               Catch::Contains("bad.safetensors") && Catch::Contains("bytes 16 to 20") && Catch::Contains("tensor 'b'") &&
                   Catch::Contains("no tensor"));
    CHECK_THAT(load_error(safetensors(J{{"a", f32({4}, 4, 20)}}, 20)),
               Catch::Contains("bad.safetensors") && Catch::Contains("tensor 'a' begins at byte 4"));
    CHECK_THAT(load_error(safetensors(J{{"a", f32({4}, 0, 16)}}, 20)),
               Catch::Contains("bad.safetensors") && Catch::Contains("20 bytes") && Catch::Contains("tensor 'a'") &&
                   Catch::Contains("ends at byte 16"));
    CHECK_THAT(load_error(safetensors(J{{"a", f32({4}, 0, 16)}, {"b", f32({4}, 0, 16)}}, 16)),
               Catch::Contains("overlaps tensor 'a'"));
    CHECK_THAT(load_error(safetensors(J::object(), 4)), Catch::Contains("4 bytes of data but no tensor"));
    CHECK(load_error(safetensors(J{{"b", f32({2}, 0, 8)}, {"a", f32({1, 2}, 8, 16)}}, 16)).empty());
}

TEST_CASE("malformed safetensors headers are refused, naming what is wrong", "[checkpoint]") {
    using J = nlohmann::json;
    const std::string good = safetensors(J{{"a", f32({2, 2}, 0, 16)}}, 16);
    REQUIRE(load_error(good).empty());
    CHECK_THAT(load_error(safetensors(J::array({1, 2}), 0)), Catch::Contains("bad.safetensors") && Catch::Contains("not a JSON object"));
    CHECK_THAT(load_error(safetensors(J{{"a", 3}}, 0)), Catch::Contains("tensor 'a' must be an object"));
    J bf16 = f32({2, 2}, 0, 8);
    bf16["dtype"] = "BF16";
    CHECK_THAT(load_error(safetensors(J{{"a", bf16}}, 8)), Catch::Contains("tensor 'a' is BF16, only F32 is read"));
    J no_dtype = f32({2}, 0, 8);
    no_dtype.erase("dtype");
    CHECK_THAT(load_error(safetensors(J{{"a", no_dtype}}, 8)), Catch::Contains("tensor 'a' has no dtype"));
    // Floats too large for an integer were converted to one anyway (undefined behaviour, found by fuzz_checkpoint).
    for (const J& shape : {J{-2, -2}, J{2.5}, J{1e300}, J{1, 1.8446744073709552e19, 96}, J("2"), J{J::array()}, J(4)})
        CHECK_THAT(load_error(safetensors(J{{"a", {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {0, 16}}}}}, 16)),
                   Catch::Contains("tensor 'a' has shape") && Catch::Contains("non-negative integers"));
    // An empty tensor holds no bytes.
    CHECK_THAT(load_error(safetensors(J{{"a", {{"dtype", "F32"}, {"shape", {2, 0}}, {"data_offsets", {0, 16}}}}}, 16)),
               Catch::Contains("tensor 'a' has shape [2, 0] (0 bytes of F32) but data offsets [0, 16]"));
    // 2^32 x 2^32 elements overflow 64 bits to 0; the data holds none of it.
    CHECK_THAT(load_error(safetensors(J{{"a", f32({int64_t(1) << 32, int64_t(1) << 32, 4}, 0, 16)}}, 16)),
               Catch::Contains("tensor 'a' has shape [4294967296, 4294967296, 4]") && Catch::Contains("16 bytes"));
    CHECK_THAT(load_error(safetensors(J{{"a", f32({2, 2}, 0, 12)}}, 16)),
               Catch::Contains("tensor 'a' has shape [2, 2] (16 bytes of F32) but data offsets [0, 12]"));
    for (const J& offsets : {J{0}, J{0, 16, 32}, J{-1, 15}, J{0.0, 16.0}, J{8e24}, J{0, 8e24}, J{16, 0}, J("0,16")})
        CHECK_THAT(load_error(safetensors(J{{"a", {{"dtype", "F32"}, {"shape", {2, 2}}, {"data_offsets", offsets}}}}, 16)),
                   Catch::Contains("tensor 'a'") && Catch::Contains("data_offsets"));
    CHECK_THAT(load_error(safetensors(J{{"a", f32({2, 2}, 0, 16)}, {"__metadata__", {{"epoch", 3}}}}, 16)),
               Catch::Contains("__metadata__") && Catch::Contains("'epoch'") && Catch::Contains("string"));
    CHECK_THAT(load_error(safetensors(J{{"a", f32({2, 2}, 0, 16)}, {"__metadata__", "x"}}, 16)),
               Catch::Contains("__metadata__ must map names to strings"));
    // A header length near 2^64 must not wrap around when added to 8.
    for (uint64_t n : {~uint64_t(0), ~uint64_t(0) - 7, uint64_t(1) << 63}) {
        std::string bytes = good;
        std::memcpy(bytes.data(), &n, 8);
        CHECK_THAT(load_error(bytes), Catch::Contains("runs past the end of the file"));
    }
}

TEST_CASE("a deeply nested header is refused without recursing into it", "[checkpoint]") {
    // A message quoting a value 200,000 lists deep through nlohmann's dump(), which
    // recurses, overflowed the stack.
    const std::string deep = std::string(200000, '[') + std::string(200000, ']');
    auto error_for = [](const std::string& header) {
        std::string bytes(8, '\0');
        const uint64_t n = header.size();
        std::memcpy(bytes.data(), &n, 8);
        bytes += header + std::string(4, '\0');
        return test::error_of([&] { bp::parse_checkpoint(bytes, "deep.safetensors"); });
    };
    CHECK(error_for(R"({"a":{"dtype":)" + deep + R"(,"shape":[1],"data_offsets":[0,4]}})") ==
          "checkpoint deep.safetensors: tensor 'a' is [[...]], only F32 is read");
    CHECK_THAT(error_for(R"({"a":{"dtype":"F32","shape":)" + deep + R"(,"data_offsets":[0,4]}})"),
               Catch::StartsWith("checkpoint deep.safetensors: tensor 'a' has shape [[...]]: expected a list"));
    CHECK_THAT(error_for(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"k":)" + deep + "}}"),
               Catch::Contains("__metadata__ entry 'k' is [[...]], not a string"));
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
               Catch::Contains("cannot be continued by this experiment: model.0.dense.units: 24 -> 8"));

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
               Catch::Contains("train.best_metric is test_accuracy, but the data (two_spirals) has no test set"));
    CHECK_THAT(test::error_of([&] { run(dir, {"train.best_metric=val_loss", "data.validation_split=0"}); }),
               Catch::StartsWith("--set train.best_metric=val_loss: train.best_metric is val_loss, but the run has "
                                 "no validation split"));
    CHECK_FALSE(fs::exists(dir / "run"));
}

TEST_CASE("validate refuses a best_metric the run cannot produce, as run does", "[checkpoint]") {
    // validate stops after prepare_run: the check must be there or in the reader.
    bp::Registry& registry = test::builtin_registry();
    const auto file = fs::path(BACKPLANE_EXPERIMENTS) / "xor.yaml";
    CHECK_THAT(test::error_of([&] {
                   bp::prepare_run(bp::load_experiment(file, {"train.best_metric=test_loss"}, registry), registry);
               }),
               Catch::Contains("xor.yaml:4:7: train.best_metric is test_loss, but the data (xor) has no test set"));
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
