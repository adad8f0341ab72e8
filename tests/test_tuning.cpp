// Tuning: search spaces drawn the same way from the same seed, trials that are plain
// runs, the best trial chosen on validation (never test) and rerun over the seeds,
// and a tuned comparison cut anywhere resuming to the same files.
#include "compare/compare.hpp"
#include "helpers.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace {

namespace fs = std::filesystem;

const std::string experiment = R"(name: tune
seed: 1
data: { source: two_spirals, samples: 400, validation_split: 0.25 }
model:
  - dense: { units: 16, activation: tanh }
  - dense: { units: 2 }
loss: softmax_cross_entropy
optimizer: { name: adam, lr: 0.01 }
train: { epochs: 4, batch_size: 32 }
compare:
  seeds: [4, 5]
  tuning: { trials: 4, seed: 9, budget: 3 }
  variants:
    adam: { optimizer: { lr: { log_uniform: [0.001, 0.1] } } }
    plain: {}
)";

std::string tuning_error(const std::string& text) {
    return test::error_of([&] { bp::parse_comparison(text, "/exp/tune.yaml", {}, test::builtin_registry()); });
}

bp::SearchDimension log_range(const std::string& key, double low, double high) {
    return {key, bp::SearchDimension::Kind::log_uniform, low, high, {}};
}

}  // namespace

TEST_CASE("a search draws the same trials from the same seed, evenly when quasi-random", "[tuning]") {
    const std::vector<bp::SearchDimension> space = {log_range("lr", 1e-4, 1),
                                                    {"beta2", bp::SearchDimension::Kind::choice, 0, 0, {"0.99", "0.999"}},
                                                    {"momentum", bp::SearchDimension::Kind::uniform, 0.8, 0.99, {}}};
    for (auto method : {bp::SearchMethod::random, bp::SearchMethod::quasi_random}) {
        const auto a = bp::draw_trials(space, method, 16, bp::Random(3));
        CHECK(a == bp::draw_trials(space, method, 16, bp::Random(3)));
        CHECK(a != bp::draw_trials(space, method, 16, bp::Random(4)));
        REQUIRE(a.size() == 16);
        for (const auto& t : a) {
            const double lr = std::stod(t[0]), momentum = std::stod(t[2]);
            CHECK((lr >= 1e-4 && lr <= 1));
            CHECK((t[1] == "0.99" || t[1] == "0.999"));
            CHECK((momentum >= 0.8 && momentum <= 0.99));
            char four[32];   // rounded to four significant digits: the text is the value
            std::snprintf(four, sizeof four, "%.4g", lr);
            CHECK(std::stod(four) == lr);
        }
    }
    // Quasi-random: the first 16 Halton points (base 2), shifted, leave no gap wider
    // than 3/32 of the range (k/16 for k = 1..15, and 1/32): here 4 decades x 3/32.
    const auto q = bp::draw_trials({log_range("lr", 1e-4, 1)}, bp::SearchMethod::quasi_random, 16, bp::Random(11));
    std::vector<double> decades;
    for (const auto& t : q) decades.push_back(std::log10(std::stod(t[0])));
    std::sort(decades.begin(), decades.end());
    const double widest = 4 * 3.0 / 32 + 1e-3;   // and rounding
    CHECK(decades.front() - -4 <= widest);
    CHECK(0 - decades.back() <= widest);
    for (std::size_t i = 1; i < decades.size(); ++i) CHECK(decades[i] - decades[i - 1] <= widest);
}

TEST_CASE("a grid takes every choice and the most points per range that trials allow", "[tuning]") {
    const std::vector<bp::SearchDimension> space = {log_range("lr", 1e-3, 1e-1),
                                                    {"momentum", bp::SearchDimension::Kind::choice, 0, 0, {"0", "0.9"}}};
    const auto g = bp::draw_trials(space, bp::SearchMethod::grid, 7, bp::Random(0));   // 2 x 3 = 6 <= 7 < 2 x 4
    const std::vector<std::vector<std::string>> expected = {{"0.001", "0"}, {"0.001", "0.9"}, {"0.01", "0"},
                                                            {"0.01", "0.9"}, {"0.1", "0"},    {"0.1", "0.9"}};
    CHECK(g == expected);
    CHECK_THAT(test::error_of([&] { bp::draw_trials(space, bp::SearchMethod::grid, 3, bp::Random(0)); }),
               Catch::Contains("at least 4 points") && Catch::Contains("more than trials: 3"));
}

TEST_CASE("a tuned variant reads each trial as a run of the tuning seed and budget", "[tuning]") {
    const auto c = bp::parse_comparison(experiment, "/exp/tune.yaml", {}, test::builtin_registry());
    REQUIRE(c);
    CHECK(c->variants == std::vector<std::string>{"adam", "plain"});
    REQUIRE(c->tuned.size() == 1);
    const bp::TunedVariant& tv = c->tuned[0];
    CHECK(tv.variant == 0);
    CHECK(c->runs[0].empty());   // known once the trials have run
    CHECK(c->runs[1].size() == 2);
    REQUIRE(tv.trials.size() == 4);
    for (const auto& t : tv.trials) {
        const double lr = std::stod(t.values[0]);
        CHECK(t.run.seed == 9);
        CHECK(t.run.train.epochs == 3);
        CHECK(t.run.optimizer.params.number("lr") == lr);
        REQUIRE(t.seeds.size() == 2);
        CHECK(t.seeds[1].seed == 5);
        CHECK(t.seeds[1].train.epochs == 4);
        CHECK(t.seeds[1].optimizer.params.number("lr") == lr);
    }
    CHECK(c->every_run().size() == 2 + 4 * 3);
    // The same file draws the same trials; another tuning seed others.
    const auto again = bp::parse_comparison(experiment, "/exp/tune.yaml", {}, test::builtin_registry());
    const auto other = bp::parse_comparison(experiment, "/exp/tune.yaml", {"compare.tuning.seed=10"}, test::builtin_registry());
    for (std::size_t t = 0; t < 4; ++t) CHECK(again->tuned[0].trials[t].values == tv.trials[t].values);
    CHECK(other->tuned[0].trials[0].values != tv.trials[0].values);
}

TEST_CASE("a bad search space or tuning block is refused with its place", "[tuning]") {
    const std::string head = experiment.substr(0, experiment.find("compare:"));
    CHECK_THAT(tuning_error(head + "compare:\n  variants:\n    a: { optimizer: { lr: { log_uniform: [0.001, 0.1] } } }\n"),
               Catch::StartsWith("/exp/tune.yaml:12:27: optimizer.lr is a search space; searching needs compare.tuning"));
    CHECK_THAT(tuning_error(head + "compare:\n  tuning: { trials: 4 }\n  variants:\n    a: {}\n"),
               Catch::StartsWith("/exp/tune.yaml:11:11: compare.tuning is set, but no variant declares a search space"));
    CHECK_THAT(tuning_error(head + "compare:\n  tuning: { trials: 4, metric: test_accuracy }\n  variants:\n    a: {}\n"),
               Catch::Contains("must be val_accuracy or val_loss, not test_accuracy") &&
                   Catch::Contains("never on the test set"));
    CHECK_THAT(tuning_error(head + "compare:\n  tuning: { trials: 4 }\n  variants:\n"
                                   "    a: { optimizer: { lr: { log_uniform: [0, 0.1] } } }\n"),
               Catch::Contains("log_uniform needs low above 0") && Catch::Contains("(in compare variant 'a')"));
    CHECK_THAT(tuning_error(head + "compare:\n  tuning: { trials: 4, method: gird }\n  variants:\n    a: {}\n"),
               Catch::Contains("'gird' is not one of quasi_random, random, grid") && Catch::Contains("did you mean 'grid'?"));
    CHECK_THAT(tuning_error(head + "compare:\n  tuning: { trials: 4 }\n  variants:\n    a: { optimizer: { lr: { log_uniform: "
                                   "[0.001, 0.1] }, momentum: { sweep: linear, from: 0, to: 1, points: 2 } } }\n"),
               Catch::Contains("variant 'a' searches optimizer.lr already; a variant sweeps or searches, not both"));
    CHECK_THAT(tuning_error(head + "compare:\n  tuning: { trials: 4 }\n  variants:\n"
                                   "    a: { optimizer: { lr: { log_unifrom: [0.001, 0.1] } } }\n"),
               Catch::Contains("optimizer.lr: 'log_unifrom' is not a search space (did you mean 'log_uniform'?)"));
    // A drawn value out of the component's range names the trial that drew it.
    CHECK_THAT(tuning_error(head + "compare:\n  tuning: { trials: 2 }\n  variants:\n"
                                   "    a: { optimizer: { name: sgd, momentum: { uniform: [1.5, 2] } } }\n"),
               Catch::Contains("(optimizer.momentum drawn as") && Catch::Contains("in trial 1)") &&
                   Catch::Contains("out of range"));
}

TEST_CASE("the best trial is chosen on validation, never on test", "[tuning]") {
    auto trial = [](std::vector<double> validation, std::vector<double> test) {
        bp::ComparisonRun run;
        for (std::size_t e = 0; e < validation.size(); ++e) {
            bp::EpochMetrics m;
            m.epoch = int64_t(e + 1);
            m.validation.accuracy = validation[e];
            m.validation.loss = 1 - validation[e];
            m.test.accuracy = test[e];
            run.result.history.push_back(m);
        }
        return run;
    };
    // Trial 0 would win on test; trial 1 wins on validation.
    std::vector<bp::ComparisonRun> trials = {trial({0.5, 0.7}, {0.6, 0.95}), trial({0.6, 0.8}, {0.7, 0.75}),
                                             trial({0.9, 0.8}, {0.9, 0.9})};
    CHECK(bp::best_trial(trials, bp::Metric::val_accuracy) == 1);   // the first of equals, by the final epoch
    CHECK(bp::best_trial(trials, bp::Metric::val_loss) == 1);
    trials[1].result.diverged = true;
    CHECK(bp::best_trial(trials, bp::Metric::val_accuracy) == 2);
    trials[2].error = "failed";
    trials[0].result.diverged = true;
    CHECK(bp::best_trial(trials, bp::Metric::val_accuracy) == -1);
}

TEST_CASE("a tuned comparison trains each trial as it runs alone, then the best trial's seeds", "[tuning]") {
    auto& registry = test::builtin_registry();
    const auto dir = test::temp_dir("tuning");
    const auto c = bp::parse_comparison(experiment, dir / "tune.yaml", {}, registry);
    REQUIRE(c);
    bp::RunOptions options;
    options.out = dir / "out";
    options.quiet = true;
    std::ostringstream log;
    const auto r = bp::run_comparison(*c, registry, options, 2, log);
    REQUIRE(r.trials.size() == 4);
    REQUIRE(r.chosen.size() == 1);

    // Each trial is bitwise the experiment alone with its value, seed and budget.
    for (std::size_t t = 0; t < 4; ++t) {
        INFO("trial " << t + 1);
        const std::string lr = c->tuned[0].trials[t].values[0];
        const auto alone = bp::parse_experiment(experiment, dir / "tune.yaml",
                                                {"optimizer.lr=" + lr, "seed=9", "train.epochs=3"}, registry);
        CHECK(test::run_quietly(alone, dir / ("alone-" + std::to_string(t))).fingerprint == r.trials[t].result.fingerprint);
        CHECK(r.trials[t].result.dir == dir / "out" / "adam" / ("trial-" + std::to_string(t + 1)));
    }
    // The chosen trial has the highest final validation accuracy (the first of equals).
    int best = 0;
    for (int t = 1; t < 4; ++t)
        if (r.trials[t].result.history.back().validation.accuracy >
            r.trials[best].result.history.back().validation.accuracy)
            best = t;
    CHECK(r.chosen[0] == best);
    // Its value then trains every seed, for the full epochs.
    const std::string chosen_lr = c->tuned[0].trials[std::size_t(best)].values[0];
    REQUIRE(r.runs.size() == 4);
    CHECK(r.runs[0].variant == "adam");
    CHECK(r.runs[1].seed == 5);
    CHECK(r.runs[1].result.history.size() == 4);
    const auto seed5 = bp::parse_experiment(experiment, dir / "tune.yaml", {"optimizer.lr=" + chosen_lr, "seed=5"}, registry);
    CHECK(test::run_quietly(seed5, dir / "alone-seed5").fingerprint == r.runs[1].result.fingerprint);

    // The files: every trial in trials.csv, the chosen one marked; the tuning in the
    // JSON; the report lists the trials and charts them against the value.
    const std::string csv = test::read_file(dir / "out" / "trials.csv");
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 5);
    CHECK_THAT(csv, Catch::Contains("adam," + std::to_string(best + 1) + ",completed,") &&
                        Catch::Contains(",yes,optimizer.lr=" + chosen_lr + ",adam/trial-" + std::to_string(best + 1)));
    const auto j = nlohmann::json::parse(test::read_file(dir / "out" / "comparison.json"));
    CHECK(j["tuning"]["metric"] == "val_accuracy");
    CHECK(j["tuning"]["variants"][0]["chosen_trial"] == best + 1);
    CHECK(j["tuning"]["variants"][0]["trials"][best]["values"]["optimizer.lr"] == chosen_lr);
    const std::string html = test::read_file(dir / "out" / "report.html");
    CHECK_THAT(html, Catch::Contains("<h2>Tuning</h2>") && Catch::Contains("<td>chosen</td>"));
    std::size_t points = 0;
    for (std::size_t p = html.find("class=\"point\" data-series=\"adam\""); p != std::string::npos;
         p = html.find("class=\"point\" data-series=\"adam\"", p + 1))
        ++points;
    CHECK(points == 4);
    CHECK(fs::exists(dir / "out" / "search_1.svg"));
    CHECK_THAT(bp::comparison_table(*c, r),
               Catch::Contains("adam: trial " + std::to_string(best + 1) + " of 4 (final val_accuracy "));
}

TEST_CASE("tuning without validation data says how to get it", "[tuning]") {
    auto& registry = test::builtin_registry();
    const auto dir = test::temp_dir("tuning-no-validation");
    const auto c = bp::parse_comparison(experiment, dir / "tune.yaml", {"data.validation_split=0"}, registry);
    bp::RunOptions options;
    options.out = dir / "out";
    options.quiet = true;
    std::ostringstream log;
    // Said before anything trains, at the tuning block, and no folder made.
    CHECK_THAT(test::error_of([&] { bp::run_comparison(*c, registry, options, 1, log); }),
               Catch::StartsWith((dir / "tune.yaml").string() + ":12:11: compare.tuning chooses trials by val_accuracy, "
                                 "but variant 'adam' has no validation data") &&
                   Catch::Contains("data.validation_split"));
    CHECK_FALSE(std::filesystem::exists(dir / "out"));
    CHECK_THAT(tuning_error(std::string(experiment).replace(experiment.find("budget: 3"), 9, "metric: validation_accuracy")),
               Catch::Contains("not validation_accuracy (did you mean 'val_accuracy'?)"));
}

TEST_CASE("a tuned comparison cut during its trials or its seeds resumes to the same results", "[tuning][checkpoint]") {
    auto& registry = test::builtin_registry();
    const auto dir = test::temp_dir("tuning-resume");
    const auto c = bp::parse_comparison(experiment, dir / "tune.yaml", {"train.checkpoint_every=1"}, registry);
    REQUIRE(c);
    bp::RunOptions options;
    options.quiet = true;
    std::ostringstream log;
    options.out = dir / "whole";
    const auto whole = bp::run_comparison(*c, registry, options, 2, log);

    // Cut during the trials: trial 2 after its first epoch, trial 4 not begun, and so
    // none of the tuned variant's seeds; the folder as a kill -9 leaves it.
    const fs::path trials = dir / "in-trials";
    fs::copy(dir / "whole", trials, fs::copy_options::recursive);
    const fs::path mid = trials / "adam" / "trial-2";
    fs::copy_file(mid / "checkpoints" / "epoch-0001.safetensors", mid / "checkpoints" / "last.safetensors",
                  fs::copy_options::overwrite_existing);
    fs::remove(mid / "summary.json");
    fs::remove_all(trials / "adam" / "trial-4");
    fs::remove_all(trials / "adam" / "seed-4");
    fs::remove_all(trials / "adam" / "seed-5");
    for (const char* file : {"comparison.csv", "comparison.json", "trials.csv", "report.html"}) fs::remove(trials / file);
    // Cut during the seeds: the best trial's seed 5 after its second epoch.
    const fs::path seeds = dir / "in-seeds";
    fs::copy(dir / "whole", seeds, fs::copy_options::recursive);
    const fs::path seed5 = seeds / "adam" / "seed-5";
    fs::copy_file(seed5 / "checkpoints" / "epoch-0002.safetensors", seed5 / "checkpoints" / "last.safetensors",
                  fs::copy_options::overwrite_existing);
    fs::remove(seed5 / "summary.json");

    for (const fs::path& cut : {trials, seeds}) {
        INFO("cut: " << cut.filename().string());
        options.out.clear();
        options.resume = cut;
        const auto resumed = bp::run_comparison(*c, registry, options, 1, log);
        CHECK(resumed.chosen == whole.chosen);
        REQUIRE(resumed.trials.size() == whole.trials.size());
        for (std::size_t i = 0; i < whole.trials.size(); ++i)
            CHECK(resumed.trials[i].result.fingerprint == whole.trials[i].result.fingerprint);
        REQUIRE(resumed.runs.size() == whole.runs.size());
        for (std::size_t i = 0; i < whole.runs.size(); ++i) {
            CHECK(resumed.runs[i].result.fingerprint == whole.runs[i].result.fingerprint);
            CHECK(resumed.runs[i].result.history.back().validation.loss ==
                  whole.runs[i].result.history.back().validation.loss);
        }
        CHECK(test::read_file(cut / "trials.csv") == test::read_file(dir / "whole" / "trials.csv"));
        CHECK(test::read_file(cut / "search_1.svg") == test::read_file(dir / "whole" / "search_1.svg"));
        CHECK(test::read_file(cut / "final_accuracy_ci.svg") == test::read_file(dir / "whole" / "final_accuracy_ci.svg"));
    }
}
