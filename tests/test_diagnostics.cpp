// Per-step schedules and steps.csv: the rate of every step, the norms each row
// reports checked against what the optimizer did, the same bytes at any thread count
// and across a stop and --resume. And --profile's timeline.csv: phases that add up
// to each step, and not a bit of the training changed.
#include "compare/compare.hpp"
#include "train/run.hpp"
#include "helpers.hpp"

#include <cmath>
#include <sstream>

namespace {

namespace fs = std::filesystem;

// steps.csv as numbers, by column name.
struct StepTable {
    std::vector<std::string> columns;
    std::vector<std::vector<double>> rows;
    double at(std::size_t row, const std::string& column) const {
        const auto c = std::size_t(std::find(columns.begin(), columns.end(), column) - columns.begin());
        REQUIRE(c < columns.size());
        return rows[row][c];
    }
};

StepTable read_steps(const fs::path& file) {
    StepTable t;
    std::istringstream in(test::read_file(file));
    std::string line;
    std::getline(in, line);
    std::stringstream header(line);
    for (std::string cell; std::getline(header, cell, ',');) t.columns.push_back(cell);
    while (std::getline(in, line)) {
        std::stringstream row(line);
        auto& values = t.rows.emplace_back();
        for (std::string cell; std::getline(row, cell, ',');) values.push_back(std::stod(cell));
    }
    return t;
}

// Two spirals: 1800 training rows, batch 64, so 29 steps an epoch (the last of 8 rows).
bp::Experiment spirals(const std::vector<std::string>& sets) {
    std::vector<std::string> all = {"train.epochs=3", "train.diagnostics_every=1"};
    all.insert(all.end(), sets.begin(), sets.end());
    return bp::load_experiment(fs::path(BACKPLANE_EXPERIMENTS) / "spirals.yaml", all, test::builtin_registry());
}

}  // namespace

TEST_CASE("a per-step schedule warms up and decays over steps, not epochs", "[schedules][diagnostics]") {
    auto& registry = test::builtin_registry();
    const auto e = bp::load_experiment(fs::path(BACKPLANE_EXPERIMENTS) / "xor.yaml",
                                       {"train.epochs=2", "optimizer.schedule={name: cosine, warmup: 3, per_step: true}"},
                                       registry);
    const auto s = registry.create<bp::Schedule>(e.schedule.name, e.schedule.params);
    // 4 steps an epoch, 8 in the run: steps 1-3 climb to the base, then the cosine
    // over the last 5 steps, from the base to 0.
    std::vector<double> rates;
    for (int64_t epoch = 1; epoch <= 2; ++epoch)
        for (int64_t step = 1; step <= 4; ++step) rates.push_back(bp::scheduled_rate(e, *s, 0.1, epoch, {}, step, 4));
    const double pi = 3.14159265358979323846;
    const std::vector<double> expected = {0.025, 0.05, 0.075, 0.1, 0.05 * (1 + std::cos(pi / 4)), 0.05,
                                          0.05 * (1 + std::cos(3 * pi / 4)), 0.0};
    for (std::size_t i = 0; i < rates.size(); ++i) CHECK(rates[i] == Approx(expected[i]).margin(1e-15));
    // Counted in steps, the warmup must leave the schedule some of the run's steps.
    const auto long_warmup = bp::load_experiment(
        fs::path(BACKPLANE_EXPERIMENTS) / "spirals.yaml",
        {"train.epochs=1", "optimizer.schedule={name: cosine, warmup: 29, per_step: true}"}, registry);
    CHECK_THAT(test::error_of([&] { bp::prepare_run(long_warmup, registry); }),
               Catch::Contains("warmup = 29 steps leaves none of the run's 29 steps (29 per epoch)"));
}

TEST_CASE("steps.csv reports what each step did", "[diagnostics]") {
    const auto dir = test::temp_dir("diagnostics");
    // Plain SGD: the update is the rate times the gradient, so its norm is too.
    const auto e = spirals({"optimizer={name: sgd, lr: 0.1, schedule: {name: cosine, warmup: 10, per_step: true}}"});
    const auto r = test::run_quietly(e, dir / "run");
    const StepTable t = read_steps(dir / "run" / "steps.csv");
    REQUIRE(t.rows.size() == 3 * 29);
    CHECK(t.columns[8] == "grad_norm:0.dense");
    CHECK(t.columns.back() == "update_ratio:2.dense");
    auto& registry = test::builtin_registry();
    const auto schedule = registry.create<bp::Schedule>(e.schedule.name, e.schedule.params);
    double weighted_loss = 0;
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        INFO("row " << i);
        const int64_t step = int64_t(i) + 1, epoch = (step - 1) / 29 + 1;
        CHECK(t.at(i, "step") == double(step));
        CHECK(t.at(i, "epoch") == double(epoch));
        const double lr = bp::scheduled_rate(e, *schedule, 0.1, epoch, r.history, (step - 1) % 29 + 1, 29);
        CHECK(t.at(i, "lr") == Approx(lr).epsilon(1e-8));
        // The update is measured as float weights after minus before: each element off
        // by up to half a float ulp of the weight, 6e-8 of it (small rates near the
        // cosine's end show it).
        CHECK(t.at(i, "update_norm") ==
              Approx(lr * t.at(i, "grad_norm")).epsilon(1e-4).margin(6e-8 * t.at(i, "weight_norm")));
        CHECK(t.at(i, "update_ratio") == Approx(t.at(i, "update_norm") / t.at(i, "weight_norm")).epsilon(1e-6));
        // The nodes' gradients make up the whole: squares add.
        double squares = 0;
        for (const char* node : {"0.dense", "1.dense", "2.dense"}) squares += std::pow(t.at(i, std::string("grad_norm:") + node), 2);
        CHECK(std::sqrt(squares) == Approx(t.at(i, "grad_norm")).epsilon(1e-6));
        if (epoch == 3) weighted_loss += t.at(i, "loss") * (step % 29 == 0 ? 8 : 64);
    }
    // The epoch's training loss is the mean of its steps' losses, weighted by their rows.
    CHECK(weighted_loss / 1800 == Approx(r.history[2].train.loss).epsilon(1e-6));
    // metrics.csv's rate is the rate the epoch began with.
    CHECK(r.history[1].learning_rate == Approx(t.at(29, "lr")).epsilon(1e-8));
}

TEST_CASE("steps.csv is the same bytes at any thread count and across a stop and resume", "[diagnostics][determinism]") {
    const auto dir = test::temp_dir("diagnostics-resume");
    const auto e = spirals({"train.diagnostics_every=7", "train.threads=1"});
    test::run_quietly(e, dir / "whole");
    const std::string whole = test::read_file(dir / "whole" / "steps.csv");
    CHECK(std::count(whole.begin(), whole.end(), '\n') == 1 + 87 / 7);
    test::run_quietly(spirals({"train.diagnostics_every=7", "train.threads=2"}), dir / "two");
    CHECK(test::read_file(dir / "two" / "steps.csv") == whole);

    bp::RunOptions options;
    options.out = dir / "cut";
    options.quiet = true;
    options.stop_after = 1;
    std::ostringstream log;
    bp::run_experiment(e, test::builtin_registry(), options, log);
    // A kill after the second epoch's rows were written, before its checkpoint:
    // the resumed run drops them and writes them again.
    test::write_file(dir / "cut" / "steps.csv", test::read_file(dir / "cut" / "steps.csv") + "35,2,0.1,0.5,1,1,1,1,1,1,1,1,1,1\n");
    options.stop_after = 0;
    options.resume = options.out;
    options.out.clear();
    bp::run_experiment(e, test::builtin_registry(), options, log);
    CHECK(test::read_file(dir / "cut" / "steps.csv") == whole);
    // Off by default: no steps.csv.
    test::run_quietly(bp::load_experiment(fs::path(BACKPLANE_EXPERIMENTS) / "spirals.yaml", {"train.epochs=1"},
                                          test::builtin_registry()),
                      dir / "off");
    CHECK_FALSE(fs::exists(dir / "off" / "steps.csv"));
}

TEST_CASE("a comparison charts its runs' steps.csv per step", "[diagnostics][compare]") {
    const auto dir = test::temp_dir("diagnostics-compare");
    const auto c = bp::parse_comparison(test::read_file(fs::path(BACKPLANE_EXPERIMENTS) / "compare_optimizers_spirals.yaml"),
                                        dir / "c.yaml",
                                        {"train.epochs=2", "train.diagnostics_every=10", "compare.seeds=[1, 2]",
                                         "compare.variants={sgd: {optimizer: {name: sgd, lr: 0.1}}, adam: {}}"},
                                        test::builtin_registry());
    bp::RunOptions options;
    options.out = dir / "out";
    options.quiet = true;
    std::ostringstream log;
    bp::run_comparison(*c, test::builtin_registry(), options, 1, log);
    for (const char* chart : {"loss_vs_step.svg", "grad_norm_vs_step.svg", "update_ratio_vs_step.svg"}) {
        INFO(chart);
        const std::string svg = test::read_file(dir / "out" / chart);
        CHECK_THAT(svg, Catch::Contains("data-series=\"sgd\"") && Catch::Contains("data-series=\"adam\""));
        CHECK_THAT(test::read_file(dir / "out" / "report.html"), Catch::Contains(svg));
    }
    CHECK_THAT(test::read_file(dir / "out" / "grad_norm_vs_step.svg"), Catch::Contains("log10(grad_norm)"));
}

TEST_CASE("a profiled run (--profile) times every step's phases and changes no bit of the training", "[diagnostics][profile]") {
    const auto dir = test::temp_dir("step-timeline");
    const auto e = spirals({"train.epochs=2", "train.diagnostics_every=0", "train.threads=2", "train.shard_size=32"});
    const auto plain = test::run_quietly(e, dir / "plain");
    CHECK_FALSE(fs::exists(dir / "plain" / "timeline.csv"));   // off by default
    bp::RunOptions options;
    options.out = dir / "profiled";
    options.profile = true;
    std::ostringstream log;
    const auto profiled = bp::run_experiment(e, test::builtin_registry(), options, log);
    CHECK(profiled.fingerprint == plain.fingerprint);

    const StepTable t = read_steps(dir / "profiled" / "timeline.csv");
    REQUIRE(t.rows.size() == 2 * 29);
    CHECK(t.columns.back() == "busy_ms:thread1");
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        INFO("row " << i);
        CHECK(t.at(i, "epoch") == double(i / 29 + 1));
        CHECK(t.at(i, "step") == double(i + 1));
        // The phases are the spans between consecutive moments of the step: they add up.
        double phases = 0;
        for (const char* phase : {"shards_ms", "exchange_ms", "reduce_ms", "optimizer_ms", "other_ms"}) {
            CHECK(t.at(i, phase) >= 0);
            phases += t.at(i, phase);
        }
        CHECK(phases == Approx(t.at(i, "wall_ms")).epsilon(1e-7));
        CHECK(t.at(i, "samples") == (i % 29 == 28 ? 8 : 64));
        // Each thread works inside the shards' phase; the shards' parts are their busy time.
        const double busy = t.at(i, "busy_ms:thread0") + t.at(i, "busy_ms:thread1");
        CHECK(t.at(i, "busy_ms:thread0") <= t.at(i, "shards_ms") * (1 + 1e-7));
        CHECK(t.at(i, "busy_ms:thread1") <= t.at(i, "shards_ms") * (1 + 1e-7));
        CHECK(t.at(i, "forward_ms") > 0);
        CHECK(t.at(i, "backward_ms") > 0);
        CHECK(t.at(i, "gather_ms") + t.at(i, "forward_ms") + t.at(i, "loss_ms") + t.at(i, "backward_ms") ==
              Approx(busy).epsilon(1e-6));
    }
    const std::string printed = log.str();
    CHECK_THAT(printed, Catch::Contains("profile of 57 steps (the run's first left out), 2 thread(s)"));
    for (const char* line : {"shards (parallel)", "reduce", "optimizer", "busy per thread", "idle"})
        CHECK_THAT(printed, Catch::Contains(line));
    // Every model entry has its line, the slowest first.
    const auto entries = printed.substr(printed.find("model entry"));
    for (const char* node : {"0.dense", "1.dense", "2.dense"}) CHECK_THAT(entries, Catch::Contains(node));
    CHECK_THAT(printed, Catch::Contains("every step's phases in " + (dir / "profiled" / "timeline.csv").string()));
}

TEST_CASE("a profile's model entries count training steps, not evaluation", "[diagnostics][profile]") {
    auto& registry = test::builtin_registry();
    const auto e = spirals({"train.threads=2"});
    bp::PreparedRun run = bp::prepare_run(e, registry);
    bp::Trainer trainer(*run.network, run.loss, run.optimizer, e.train, e.seed, e.augment);
    trainer.start_profile();
    trainer.run_epoch(1, run.data.train);
    for (int i = 0; i < 20; ++i) trainer.evaluate(run.data.train);   // 20 forward passes of the whole set
    trainer.run_epoch(2, run.data.train);
    const auto dir = test::temp_dir("step-timeline-entries");
    test::write_file(dir / "timeline.csv", trainer.timeline()->csv());
    const StepTable t = read_steps(dir / "timeline.csv");
    REQUIRE(t.rows.size() == 2 * 29);
    // Each node's forward lies inside its shard's forward lap: over the steps the entries
    // sum (the first step left out), they cannot exceed the shards' forward time.
    double shards_forward = 0;
    for (std::size_t i = 1; i < t.rows.size(); ++i) shards_forward += t.at(i, "forward_ms");
    double entries_forward = 0;
    for (double ms : trainer.timeline()->node_forward()) entries_forward += ms;
    CHECK(entries_forward > 0);
    CHECK(entries_forward <= shards_forward);
}
