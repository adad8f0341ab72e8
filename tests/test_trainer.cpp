// Training: bitwise determinism across thread counts, the shipped experiments
// reach their accuracy, and a run leaves complete files.
#include "model/experiment.hpp"
#include "helpers.hpp"
#include "train/run.hpp"
#include "train/shard_schedule.hpp"

#include <backplane/version.hpp>

#include <nlohmann/json.hpp>

#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <numeric>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace {

const fs::path experiments = BACKPLANE_EXPERIMENTS;

bp::RunResult run(const std::string& file, const std::vector<std::string>& sets, const std::string& out) {
    auto& registry = test::builtin_registry();
    return test::run_quietly(bp::load_experiment(experiments / file, sets, registry), test::temp_dir(out));
}

}  // namespace

TEST_CASE("weights and metrics are bitwise identical at 1, 2 and 8 threads", "[trainer][determinism]") {
    // Small shards so a batch has many of them; an odd sample count so the last
    // batch and shard are partial; dropout-free but shuffled. Wide enough layers that
    // a step outlasts a worker's wake-up: with spirals' 64 units a 2-thread run could
    // finish on one thread and prove nothing.
    const std::vector<std::string> sets = {"train.epochs=3", "train.shard_size=8", "train.batch_size=60",
                                           "data.samples=3998", "data.validation_split=0.2", "model.0.units=256",
                                           "model.1.units=256"};
    auto with_threads = [&](int t) {
        auto s = sets;
        s.push_back("train.threads=" + std::to_string(t));
        return run("spirals.yaml", s, "determinism-" + std::to_string(t));
    };
    const auto one = with_threads(1);
    for (int t : {2, 8}) {
        const auto other = with_threads(t);
        INFO(t << " threads");
        // Bitwise equality proves nothing if every shard ran on one thread.
        CHECK(one.threads_used == 1);
        CHECK(other.threads_used > 1);
        REQUIRE(other.weights.size() == one.weights.size());
        for (std::size_t i = 0; i < one.weights.size(); ++i) CHECK(other.weights[i] == one.weights[i]);
        CHECK(other.fingerprint == one.fingerprint);
        REQUIRE(other.history.size() == one.history.size());
        for (std::size_t i = 0; i < one.history.size(); ++i) {
            CHECK(other.history[i].train.loss == one.history[i].train.loss);
            CHECK(other.history[i].train.accuracy == one.history[i].train.accuracy);
            CHECK(other.history[i].validation.loss == one.history[i].validation.loss);
        }
    }
}

TEST_CASE("a step's shards run their units in order, and move to a thread that is free", "[trainer][schedule]") {
    // 4 shards of 30 units on 2 threads. Slot 1's first unit waits until slot 0 has run
    // 40 units (or 2 s have passed): a fixed split (2 shards each) leaves slot 0 nothing
    // to run while it waits, and slot 1 then runs its 60 units; the schedule lets slot 0
    // run the other three shards meanwhile, and afterwards the threads share what is left.
    constexpr std::size_t shards = 4;
    constexpr int units = 30;
    bp::ShardSchedule schedule;
    schedule.resize(shards + 2);
    std::vector<std::vector<int>> ran(shards + 2), slots(shards + 2);
    std::atomic<int> on_slot0{0};
    bool waited = false;
    tbb::task_arena arena(2);
    arena.execute([&] {
        schedule.run(1, shards + 1, units, 2, [&](std::size_t s, int unit) {
            const int slot = tbb::this_task_arena::current_thread_index();
            ran[s].push_back(unit);
            slots[s].push_back(slot);
            if (slot == 0) ++on_slot0;
            if (slot == 1 && !waited) {
                waited = true;
                const int from = on_slot0;
                const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
                while (on_slot0 < from + 40 && std::chrono::steady_clock::now() < deadline)
                    std::this_thread::sleep_for(std::chrono::microseconds(50));
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));   // both threads are up long before the end
        });
    });
    REQUIRE(waited);   // slot 1 took part
    std::vector<int> in_order(units);
    std::iota(in_order.begin(), in_order.end(), 0);
    CHECK(ran[0].empty());           // outside [first, last)
    CHECK(ran[shards + 1].empty());
    int moved = 0;
    for (std::size_t s = 1; s <= shards; ++s) {
        INFO("shard " << s);
        CHECK(ran[s] == in_order);
        const auto zeros = std::count(slots[s].begin(), slots[s].end(), 0);
        moved += zeros > 0 && zeros < units;
    }
    CHECK(on_slot0 > 60);   // exactly 60 with a fixed split
    CHECK(moved > 0);       // a shard ran on both threads
}

TEST_CASE("backward stops at the first layer with parameters", "[trainer]") {
    // tests/broken_plugins/backward_probe.cpp: no_backward throws if its backward runs;
    // scale_probe throws unless dx has rows exactly when expect_dx says so.
    bp::Registry registry;
    registry.load_path(bp::builtin_plugin_dir());
    const fs::path probe = fs::path(BACKPLANE_TEST_PLUGINS) / "backward_probe" / "libbackward_probe.so";
    auto train = [&](const std::string& model, const std::string& name) {
        const auto dir = test::temp_dir("probe-" + name);
        const auto file = test::write_file(dir / "e.yaml", "name: probe\nplugins: [" + probe.string() +
                                                            "]\ndata: {source: gaussian, shape: 2x3x3, samples: 64, "
                                                            "classes: 2}\nmodel:\n" + model +
                                                            "loss: softmax_cross_entropy\noptimizer: sgd\ntrain: {epochs: 1, batch_size: 16}\n");
        bp::RunOptions options;
        options.out = dir / "run";
        options.quiet = true;
        std::ostringstream log;
        return test::error_of([&] { bp::run_experiment(bp::load_experiment(file, {}, registry), registry, options, log); });
    };
    // Before the first layer with parameters: no backward call, and no input gradient for it.
    CHECK(train("  - no_backward\n  - scale_probe: {expect_dx: false}\n  - flatten\n  - dense: {units: 2}\n", "first") ==
          "");
    // After it: both run, with dx.
    CHECK(train("  - flatten\n  - dense: {units: 4}\n  - scale_probe: {expect_dx: true}\n  - dense: {units: 2}\n",
                "after") == "");
    CHECK(train("  - flatten\n  - dense: {units: 4}\n  - no_backward\n  - dense: {units: 2}\n", "called")
              .find("no_backward: backward was called") != std::string::npos);
    // In a graph: a branch with nothing that learns at or before it gets no backward, and
    // no node is asked for the gradient of what such a branch holds.
    CHECK(train("  - { no_backward: {}, name: raw }\n  - { flatten: {}, name: flat }\n  - { dense: {units: 18}, name: fc }\n"
                "  - { scale_probe: {expect_dx: false}, name: side, inputs: [flat] }\n"
                "  - { add: {}, inputs: [flat, fc, side] }\n  - scale_probe: {expect_dx: true}\n  - dense: {units: 2}\n",
                "graph") == "");
}

TEST_CASE("a different seed gives different weights", "[trainer][determinism]") {
    const auto a = run("xor.yaml", {"train.epochs=1"}, "seed-a");
    const auto b = run("xor.yaml", {"train.epochs=1", "seed=4"}, "seed-b");
    CHECK(a.fingerprint != b.fingerprint);
}

TEST_CASE("experiments/spirals.yaml reaches 99% training accuracy", "[trainer][e2e]") {
    const auto r = run("spirals.yaml", {}, "spirals");
    CHECK_FALSE(r.diverged);
    CHECK(r.history.back().train.accuracy >= 0.99);
    CHECK(r.history.back().validation.accuracy >= 0.97);
}

TEST_CASE("experiments/xor.yaml reaches 100% accuracy", "[trainer][e2e]") {
    const auto r = run("xor.yaml", {}, "xor");
    CHECK(r.history.back().train.accuracy == 1.0);
}

TEST_CASE("train.patience stops a run whose best_metric stopped improving", "[trainer]") {
    const auto r = run("xor.yaml", {"train.epochs=500", "train.best_metric=train_accuracy", "train.patience=3"},
                       "xor-patience");
    REQUIRE(r.history.size() < 500);
    // Accuracy reached 1.0 three epochs before the last, and never beat it after.
    const auto& h = r.history;
    CHECK(h[h.size() - 4].train.accuracy == 1.0);
    CHECK(h[h.size() - 5].train.accuracy < 1.0);
    CHECK_THAT(test::read_file(r.dir / "summary.json"), Catch::Contains("\"status\": \"stopped early\""));
}

TEST_CASE("sine regression with mse learns the curve", "[trainer][e2e]") {
    const std::string text = R"(name: sine
data: { source: sine, samples: 512 }
model:
  - dense: { units: 32, activation: tanh }
  - dense: { units: 1 }
loss: mse
optimizer: { name: adam, lr: 0.01 }
train: { epochs: 60, batch_size: 32 }
)";
    auto& registry = test::builtin_registry();
    const auto e = bp::parse_experiment(text, test::temp_dir("sine") / "sine.yaml", {}, registry);
    const auto r = test::run_quietly(e, test::temp_dir("sine-run"));
    CHECK(r.history.back().train.loss < 0.005);
    CHECK(r.history.back().train.loss < r.history.front().train.loss / 5);
    CHECK(std::isnan(r.history.back().train.accuracy));   // regression has no accuracy
}

TEST_CASE("a run leaves config.yaml, metrics.csv and summary.json", "[trainer][files]") {
    const auto r = run("spirals.yaml", {"train.epochs=3", "data.validation_split=0.25"}, "files");
    const auto csv = test::read_file(r.dir / "metrics.csv");
    std::istringstream lines(csv);
    std::string header, row;
    std::getline(lines, header);
    CHECK(header ==
          "epoch,train_loss,train_accuracy,val_loss,val_accuracy,test_loss,test_accuracy,seconds,samples_per_second,lr");
    int rows = 0;
    while (std::getline(lines, row)) {
        ++rows;
        CHECK(std::count(row.begin(), row.end(), ',') == 9);
        CHECK(row.substr(row.rfind(',') + 1) == "0.005");   // spirals' Adam lr, constant
        // Every column has a value but the test set's: spirals has none.
        CHECK(row.find(",,,") != std::string::npos);
        CHECK(row.find(",,,,") == std::string::npos);
    }
    CHECK(rows == 3);

    const auto summary = nlohmann::json::parse(test::read_file(r.dir / "summary.json"));
    CHECK(summary["name"] == "spirals");
    CHECK(summary["seed"] == 1);
    CHECK(summary["epochs"] == 3);
    CHECK(summary["status"] == "completed");
    CHECK(summary["threads"].get<int>() >= 1);
    CHECK(summary["peak_rss_mib"].get<double>() > 1);   // this test process: plugins, data, buffers
    CHECK(summary["peak_rss_mib"].get<double>() < 1 << 16);
    CHECK(summary["backplane_version"] == BACKPLANE_VERSION);
    const std::string products = summary["matrix_products"];
    CHECK((products == "openblas" || products == "eigen"));
    CHECK(summary["final"]["train_accuracy"].get<double>() == r.history.back().train.accuracy);
    CHECK(summary["final"]["val_loss"].get<double>() == r.history.back().validation.loss);
    CHECK(summary["samples_per_second"].get<double>() > 0);
    CHECK(summary["wall_seconds"].get<double>() > 0);
    CHECK(summary["weights_fingerprint"] == r.fingerprint);

    // The resolved config reruns to the same bits.
    auto& registry = test::builtin_registry();
    const auto again = bp::load_experiment(r.dir / "config.yaml", {}, registry);
    CHECK(test::run_quietly(again, test::temp_dir("files-again")).fingerprint == r.fingerprint);

    // No temporary files left behind.
    for (const auto& entry : fs::directory_iterator(r.dir)) CHECK(entry.path().string().find(".tmp") == std::string::npos);
}

TEST_CASE("a diverging run stops and says so", "[trainer]") {
    // Squared error with a huge step grows without bound.
    const auto r = run("xor.yaml", {"loss=mse", "optimizer.lr=1000", "train.epochs=20"}, "diverge");
    CHECK(r.diverged);
    CHECK(r.history.back().diverged);
    CHECK(r.history.size() < 20);
    const auto summary = nlohmann::json::parse(test::read_file(r.dir / "summary.json"));
    CHECK(summary["status"] == "diverged");
}
