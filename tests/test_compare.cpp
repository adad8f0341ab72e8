// Comparisons: every variant x seed trained, each run bitwise what it is alone; the
// table's figures from the runs; a diverging variant reported while the rest finish;
// bad compare blocks refused with file:line.
#include "compare/compare.hpp"
#include "helpers.hpp"
#include "compare/report.hpp"

#include <nlohmann/json.hpp>

namespace {

const std::string experiment = R"(name: cmp
seed: 1
data: { source: two_spirals, samples: 400, validation_split: 0.25 }
model:
  - dense: { units: 16, activation: tanh }
  - dense: { units: 2 }
loss: softmax_cross_entropy
optimizer: { name: adam, lr: 0.01, beta1: 0.8 }
train: { epochs: 5, batch_size: 32 }
compare:
  seeds: [4, 5]
  target: { metric: val_accuracy, value: 0.5 }
  variants:
    adam: {}
    momentum: { optimizer: { name: sgd, lr: 0.1, momentum: 0.9 } }
    wild: { model: [ dense: { units: 1 } ], loss: mse, optimizer: { name: sgd, lr: 1000 } }
)";

std::string compare_error(const std::string& text) {
    return test::error_of([&] {
        bp::parse_comparison(text, "/exp/cmp.yaml", {}, test::builtin_registry());
    });
}

}  // namespace

TEST_CASE("a comparison trains every variant and seed, each as it would run alone", "[compare]") {
    auto& registry = test::builtin_registry();
    const auto dir = test::temp_dir("compare");
    const auto c = bp::parse_comparison(experiment, dir / "cmp.yaml", {}, registry);
    REQUIRE(c);
    CHECK(c->variants == std::vector<std::string>{"adam", "momentum", "wild"});
    // The variant's optimizer replaces adam's whole: beta1 does not leak into sgd.
    CHECK(c->runs[1][0].optimizer.name == "sgd");
    CHECK_FALSE(c->runs[1][0].optimizer.params.has("beta1"));
    CHECK(c->runs[0][1].seed == 5);

    bp::RunOptions options;
    options.out = dir / "out";
    options.quiet = true;
    std::ostringstream log;
    const auto r = bp::run_comparison(*c, registry, options, 3, log);   // 3 runs at a time
    REQUIRE(r.runs.size() == 6);
    CHECK(r.runs[3].variant == "momentum");
    CHECK(r.runs[3].seed == 5);

    // Bitwise what the same experiment gives alone, and what every run gives one at a time.
    const auto alone = bp::parse_experiment(experiment, dir / "cmp.yaml",
                                            {"optimizer={name: sgd, lr: 0.1, momentum: 0.9}", "seed=5"}, registry);
    CHECK(test::run_quietly(alone, dir / "alone").fingerprint == r.runs[3].result.fingerprint);
    bp::RunOptions sequential = options;
    sequential.out = dir / "sequential";
    const auto one_by_one = bp::run_comparison(*c, registry, sequential, 1, log);
    for (std::size_t i = 0; i < 6; ++i) {
        INFO("run " << i);
        CHECK(one_by_one.runs[i].result.fingerprint == r.runs[i].result.fingerprint);
        CHECK(one_by_one.runs[i].result.history.back().train.loss == r.runs[i].result.history.back().train.loss);
    }

    // The diverging variant is reported as such; the others finish.
    REQUIRE(r.stats.size() == 3);
    CHECK(r.stats[2].diverged == 2);
    CHECK(r.stats[0].diverged == 0);
    CHECK(r.stats[0].reached == 2);
    CHECK(r.accuracy == bp::Metric::val_accuracy);
    const auto& h = r.runs[0].result.history;
    const double a0 = r.runs[0].result.history.back().validation.accuracy;
    const double a1 = r.runs[1].result.history.back().validation.accuracy;
    CHECK(r.stats[0].final_accuracy == Approx((a0 + a1) / 2));
    CHECK(r.stats[0].final_accuracy_std == Approx(std::abs(a0 - a1) / std::sqrt(2.0)));
    CHECK(h.size() == 5);

    // Statistics: the seeded bootstrap interval of each mean (both of two values: the
    // resampled means run from the lower to the higher), and every variant against the
    // best one paired by seed (two pairs cannot be significant: p = 1 or 0.5, Holm x1).
    CHECK(r.stats[0].final_accuracy_ci.low == Approx(std::min(a0, a1)));
    CHECK(r.stats[0].final_accuracy_ci.high == Approx(std::max(a0, a1)));
    const std::size_t best = r.stats[0].final_accuracy >= r.stats[1].final_accuracy ? 0 : 1;
    CHECK(r.stats[1 - best].best == r.stats[best].variant);
    CHECK(std::isnan(r.stats[best].p_vs_best));
    CHECK(r.stats[1 - best].pairs == 2);
    CHECK(r.stats[1 - best].p_vs_best >= 0.5);
    CHECK(r.stats[2].pairs == 0);   // every run of wild diverged: nothing to pair
    CHECK(std::isnan(r.stats[2].p_vs_best));

    // The files: a row per run, the summary per variant, each run's own folder.
    const std::string csv = test::read_file(dir / "out" / "comparison.csv");
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 7);
    CHECK_THAT(csv, Catch::Contains("wild,4,diverged,"));
    const auto j = nlohmann::json::parse(test::read_file(dir / "out" / "comparison.json"));
    CHECK(j["variants"].size() == 3);
    CHECK(j["variants"][2]["diverged"] == 2);
    CHECK(j["variants"][0]["final_accuracy"]["ci95"][0] == Approx(std::min(a0, a1)));
    CHECK(j["variants"][1 - best]["vs_best"]["variant"] == r.stats[best].variant);
    CHECK(j["variants"][1 - best]["vs_best"]["pairs"] == 2);
    CHECK(std::filesystem::exists(dir / "out" / "momentum" / "seed-5" / "summary.json"));
    const std::string table = bp::comparison_table(*c, r);
    CHECK_THAT(table, Catch::Contains("wild") && Catch::Contains("2*") && Catch::Contains("(2/2)"));
    CHECK_THAT(table, Catch::Contains("final val_accuracy [95% CI]"));
    CHECK_THAT(table, Catch::Contains("with 2 seeds no p can be below 0.5 (6 or more seeds can reach 0.05)"));
    // No test set here: the column of test accuracy chosen by validation is left out.
    CHECK_THAT(table, !Catch::Contains("at best val"));
    CHECK(j["variants"][0]["at_best_validation"]["mean"] == Approx(r.stats[0].best_accuracy));

    // The report: the table, and in each of the four charts a line per variant that
    // did not diverge, the diverged one named in the legend.
    const std::string html = test::read_file(dir / "out" / "report.html");
    CHECK_THAT(html, Catch::Contains("<td>momentum</td>") && Catch::Contains("<td>2*</td>"));
    for (const char* variant : {"adam", "momentum"}) {
        const std::string line = std::string("class=\"line\" data-series=\"") + variant + "\"";
        std::size_t count = 0;
        for (std::size_t p = html.find(line); p != std::string::npos; p = html.find(line, p + 1)) ++count;
        CHECK(count == 4);
    }
    CHECK(html.find("data-series=\"wild\"") == std::string::npos);
    CHECK_THAT(html, Catch::Contains("wild (diverged)"));
    for (const char* svg : {"loss_vs_epoch.svg", "accuracy_vs_epoch.svg", "loss_vs_time.svg", "accuracy_vs_time.svg"})
        CHECK_THAT(test::read_file(dir / "out" / svg), Catch::StartsWith("<svg") && Catch::EndsWith("</svg>\n"));
}

TEST_CASE("the honest figure is the test accuracy at the epoch validation picks", "[compare]") {
    std::vector<bp::EpochMetrics> h(3);
    const double validation[] = {0.5, 0.8, 0.7}, test[] = {0.6, 0.75, 0.9};
    for (int e = 0; e < 3; ++e) h[e].epoch = e + 1, h[e].validation.accuracy = validation[e], h[e].test.accuracy = test[e];
    CHECK(bp::at_best_validation(h, bp::Metric::test_accuracy) == 0.75);   // not the 0.9 the test set would pick
    for (auto& m : h) m.validation.accuracy = std::nan("");
    CHECK(std::isnan(bp::at_best_validation(h, bp::Metric::test_accuracy)));
}

TEST_CASE("a chart's line follows its points", "[compare]") {
    // Two points span the plot area: x 0..1 maps to 70..490, y (padded by 5%) to 350..40.
    const std::string svg = bp::svg_line_chart("t", "x", "y", {{"a", {0, 1}, {0, 1}, {0, 1}, {0, 1}}});
    CHECK_THAT(svg, Catch::Contains("data-series=\"a\" d=\"M70,335.9 L490,54.09\""));
}

TEST_CASE("a sweep expands into one variant per value, with a sensitivity chart", "[compare]") {
    const std::string head = experiment.substr(0, experiment.find("compare:"));
    const auto c = bp::parse_comparison(
        head + "compare:\n  variants:\n    sgd: { optimizer: { name: sgd, lr: { sweep: log, from: 0.001, to: 0.1, "
               "points: 3 } } }\n    plain: {}\n",
        "/exp/cmp.yaml", {}, test::builtin_registry());
    REQUIRE(c);
    CHECK(c->variants == std::vector<std::string>{"sgd@0.001", "sgd@0.01", "sgd@0.1", "plain"});
    REQUIRE(c->sweeps.size() == 1);
    CHECK(c->sweeps[0].key == "optimizer.lr");
    CHECK(c->sweeps[0].log);
    CHECK(c->runs[1][0].optimizer.name == "sgd");
    CHECK(c->runs[1][0].optimizer.params.number("lr") == Approx(0.01));
    CHECK(c->runs[3][0].optimizer.name == "adam");
    CHECK_THAT(test::error_of([&] {
                   bp::parse_comparison(head + "compare:\n  variants:\n    a: { optimizer: { lr: { sweep: log, from: 0, "
                                               "to: 1, points: 3 } } }\n",
                                        "/exp/cmp.yaml", {}, test::builtin_registry());
               }),
               Catch::Contains("a log sweep needs from and to above 0"));

    bp::RunOptions options;
    options.out = test::temp_dir("compare-sweep");
    options.quiet = true;
    std::ostringstream log;
    const auto r = bp::run_comparison(*c, test::builtin_registry(), options, 1, log);
    const std::string svg = test::read_file(options.out / "sensitivity_1.svg");
    CHECK_THAT(svg, Catch::Contains("data-series=\"sgd\"") && Catch::Contains("log10(optimizer.lr)"));
}

TEST_CASE("a file without compare: is no comparison", "[compare]") {
    CHECK_FALSE(bp::load_comparison(std::filesystem::path(BACKPLANE_EXPERIMENTS) / "xor.yaml", {},
                                    test::builtin_registry()));
    CHECK(bp::load_comparison(std::filesystem::path(BACKPLANE_EXPERIMENTS) / "compare_optimizers_spirals.yaml", {},
                              test::builtin_registry()));
}

TEST_CASE("bad compare blocks are refused with file:line", "[compare]") {
    const std::string head = experiment.substr(0, experiment.find("compare:"));
    CHECK_THAT(compare_error(head + "compare:\n  variant: {}\n"),
               Catch::StartsWith("/exp/cmp.yaml:11:3: unknown key 'variant' in compare (did you mean 'variants'?)"));
    CHECK_THAT(compare_error(head + "compare:\n  variants: { a: 3 }\n"),
               Catch::StartsWith("/exp/cmp.yaml:11:18: variant 'a' must map experiment keys to new values"));
    CHECK_THAT(compare_error(head + "compare:\n  target: { metric: test_acc, value: 1 }\n  variants: { a: {} }\n"),
               Catch::StartsWith("/exp/cmp.yaml:11:21: compare.target.metric 'test_acc' is not one of"));
    CHECK_THAT(compare_error(head + "compare:\n  variants: { a: { optimizer: { name: sgd, lr: -1 } } }\n"),
               Catch::Contains("lr") && Catch::Contains("out of range"));
    CHECK_THAT(compare_error(head + "compare:\n  variants: { a: { seed: 3 } }\n"),
               Catch::Contains("variant 'a' cannot change name, seed or compare"));
    CHECK_THAT(compare_error(head + "compare:\n  seeds: [1, 2, 1]\n  variants: { a: {} }\n"),
               Catch::StartsWith("/exp/cmp.yaml:11:17: seed 1 is listed twice"));
    CHECK_THAT(compare_error(head + "compare:\n  variants:\n    a: { optimizer: { lr: { sweep: linear, from: 0.1, to: "
                                    "0.2, points: 2 } } }\n    a@0.2: {}\n"),
               Catch::Contains("two variants are named 'a@0.2'"));
    CHECK_THAT(compare_error(head + "compare:\n  variants:\n    a: { optimizer: { lr: { sweep: log, from: 0.1, to: 1, "
                                    "points: 2 }, beta1: { sweep: linear, from: 0.8, to: 0.9, points: 2 } } }\n"),
               Catch::Contains("variant 'a' sweeps optimizer.lr already; one sweep per variant"));
}

TEST_CASE("a variant that changes the optimizer keeps the experiment's schedule", "[compare]") {
    const std::string head = experiment.substr(0, experiment.find("optimizer:"));
    const auto c = bp::parse_comparison(
        head + "optimizer: { name: adam, schedule: { name: cosine, warmup: 2 } }\ntrain: { epochs: 5 }\n"
               "compare:\n  variants:\n    sgd: { optimizer: { name: sgd } }\n    own: { optimizer: { name: sgd, "
               "schedule: { name: step } } }\n",
        "/exp/cmp.yaml", {}, test::builtin_registry());
    REQUIRE(c);
    CHECK(c->runs[0][0].optimizer.name == "sgd");
    CHECK(c->runs[0][0].schedule.name == "cosine");
    CHECK(c->runs[0][0].warmup == 2);
    CHECK(c->runs[1][0].schedule.name == "step");
    CHECK(c->runs[1][0].warmup == 0);
}

TEST_CASE("errors in a sweep or a variant point at it and name the variant", "[compare]") {
    const std::string head = experiment.substr(0, experiment.find("compare:"));
    // Line 12 is the variant's; its columns are those of the text below.
    CHECK(compare_error(head + "compare:\n  variants:\n    a: { optimizer: { lr: { sweep: log, from: 0.1, to: 1, "
                               "points: 0 } } }\n") ==
          "/exp/cmp.yaml:12:67: sweep.points = 0 is out of range [2, 1000] (in compare variant 'a')");
    CHECK(compare_error(head + "compare:\n  variants:\n    a: { optimizer: { lr: { sweep: log, from: -1, to: 1, "
                               "points: 3 } } }\n") ==
          "/exp/cmp.yaml:12:27: a log sweep needs from and to above 0 (in compare variant 'a')");
    CHECK(compare_error(head + "compare:\n  variants:\n    b: {}\n    a: { optimizer: { name: sgd, lr: -1 } }\n") ==
          "/exp/cmp.yaml:13:38: optimizer (sgd).lr = -1 is out of range [0, 1000] (in compare variant 'a')");
    CHECK(compare_error(head + "compare:\n  variants:\n    a: { train: { epochz: 3 } }\n") ==
          "/exp/cmp.yaml:12:19: unknown key 'epochz' in train (did you mean 'epochs'?); allowed: epochs, batch_size, "
          "shard_size, threads, shuffle, checkpoint_every, best_metric, patience, diagnostics_every (in compare variant 'a')");
    // A value the variant does not change keeps its place in the file.
    const std::string bad_base = head.substr(0, head.find("epochs: 5")) + "epochs: 0" +
                                 head.substr(head.find("epochs: 5") + 9);
    CHECK(compare_error(bad_base + "compare:\n  variants:\n    a: { optimizer: { lr: 0.1 } }\n") ==
          "/exp/cmp.yaml:9:18: train.epochs = 0 is out of range [1, 1000000] (in compare variant 'a')");
}

namespace {

// comparison.json without what the clock decides.
nlohmann::json untimed_json(const std::filesystem::path& dir) {
    auto j = nlohmann::json::parse(test::read_file(dir / "comparison.json"));
    for (auto& v : j["variants"]) v.erase("seconds_to_target"), v.erase("samples_per_second");
    return j;
}

// comparison.csv without its two timed columns (seconds_to_target, samples_per_second).
std::string untimed_csv(const std::filesystem::path& dir) {
    std::istringstream in(test::read_file(dir / "comparison.csv"));
    std::string out;
    for (std::string line; std::getline(in, line);) {
        std::vector<std::string> cells;
        std::stringstream row(line);
        for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
        if (line.back() == ',') cells.emplace_back();
        for (std::size_t i = 0; i < cells.size(); ++i)
            if (i != 7 && i != 8) out += cells[i] + ",";
        out += "\n";
    }
    return out;
}

}  // namespace

TEST_CASE("a comparison cut at any point resumes to the same results", "[compare][checkpoint]") {
    namespace fs = std::filesystem;
    auto& registry = test::builtin_registry();
    const auto dir = test::temp_dir("compare-resume");
    const auto c = bp::parse_comparison(experiment, dir / "cmp.yaml", {"train.checkpoint_every=1"}, registry);
    REQUIRE(c);
    bp::RunOptions options;
    options.quiet = true;
    std::ostringstream log;
    options.out = dir / "whole";
    const auto whole = bp::run_comparison(*c, registry, options, 2, log);

    // The folder as a kill -9 could leave it, at four points at once.
    const fs::path cut = dir / "cut";
    fs::copy(dir / "whole", cut, fs::copy_options::recursive);
    fs::remove_all(cut / "adam" / "seed-4");                                   // not begun
    fs::remove(cut / "adam" / "seed-5" / "summary.json");                      // after its last checkpoint
    const fs::path mid = cut / "momentum" / "seed-4";                          // after epoch 2 of 5
    fs::copy_file(mid / "checkpoints" / "epoch-0002.safetensors", mid / "checkpoints" / "last.safetensors",
                  fs::copy_options::overwrite_existing);
    fs::remove(mid / "summary.json");
    fs::remove_all(cut / "momentum" / "seed-5" / "checkpoints");               // inside its first epoch
    fs::remove(cut / "momentum" / "seed-5" / "summary.json");
    for (const char* file : {"comparison.csv", "comparison.json", "report.html"}) fs::remove(cut / file);

    // Started again without --resume, the folder is refused and left as it is.
    options.out = cut;
    CHECK_THAT(test::error_of([&] { bp::run_comparison(*c, registry, options, 1, log); }),
               Catch::Contains("already holds results") && Catch::Contains("--resume " + cut.string()));
    CHECK_FALSE(fs::exists(cut / "adam" / "seed-4"));

    options.out.clear();
    options.resume = cut;
    const auto resumed = bp::run_comparison(*c, registry, options, 1, log);
    REQUIRE(resumed.runs.size() == whole.runs.size());
    for (std::size_t i = 0; i < whole.runs.size(); ++i) {
        INFO("run " << i << " " << whole.runs[i].variant << " seed " << whole.runs[i].seed);
        CHECK(resumed.runs[i].result.fingerprint == whole.runs[i].result.fingerprint);
        CHECK(resumed.runs[i].result.diverged == whole.runs[i].result.diverged);
        REQUIRE(resumed.runs[i].result.history.size() == whole.runs[i].result.history.size());
        for (std::size_t e = 0; e < whole.runs[i].result.history.size(); ++e)
            for (bp::Metric m : bp::all_metrics) {
                const double a = resumed.runs[i].result.history[e].get(m), b = whole.runs[i].result.history[e].get(m);
                CHECK((a == b || (std::isnan(a) && std::isnan(b))));
            }
    }
    // The files, but for what the clock decides, are those of the unbroken comparison.
    CHECK(untimed_json(cut) == untimed_json(dir / "whole"));
    CHECK(untimed_csv(cut) == untimed_csv(dir / "whole"));
    for (const char* chart : {"loss_vs_epoch.svg", "accuracy_vs_epoch.svg"})
        CHECK(test::read_file(cut / chart) == test::read_file(dir / "whole" / chart));

    // A comparison file changed since is refused before anything is trained.
    const auto changed = bp::parse_comparison(experiment, dir / "cmp.yaml",
                                              {"train.checkpoint_every=1", "optimizer.lr=0.02"}, registry);
    fs::remove(cut / "adam" / "seed-5" / "summary.json");
    CHECK_THAT(test::error_of([&] { bp::run_comparison(*changed, registry, options, 1, log); }),
               Catch::Contains("was made by another experiment: optimizer.lr: 0.01 -> 0.02"));
    CHECK_FALSE(fs::exists(cut / "adam" / "seed-5" / "summary.json"));
}

TEST_CASE("what a fuzzer found in the comparison reader is refused in time, by name", "[compare]") {
    const std::string head = experiment.substr(0, experiment.find("compare:"));
    // A sweep as a whole variant once replaced the experiment by a number.
    CHECK_THAT(compare_error(head + "compare: {variants: {a: {sweep: linear, from: 0, to: 1, points: 2}}}\n"),
               Catch::StartsWith("/exp/cmp.yaml:10:25: a sweep stands for one value under a key"));
    // A grid of a million runs was read whole before any trained.
    std::string seeds;
    for (int s = 0; s < 1000; ++s) seeds += (s ? ", " : "") + std::to_string(s);
    CHECK_THAT(compare_error(head + "compare:\n  seeds: [" + seeds + "]\n  variants:\n    a: { optimizer: { lr: { sweep: "
                                    "linear, from: 0.001, to: 1, points: 1000 } } }\n"),
               Catch::Contains("the comparison would hold 1000000 runs (trials and seeds included), more than 10000"));
    // Thirty levels of anchors denote 2^30 values in a kilobyte.
    std::string anchors = "l0: &l0 {x: 1}\n";
    for (int l = 1; l <= 30; ++l)
        anchors += "l" + std::to_string(l) + ": &l" + std::to_string(l) + " {x: *l" + std::to_string(l - 1) + ", y: *l" +
                   std::to_string(l - 1) + "}\n";
    CHECK_THAT(compare_error(anchors + "compare: {variants: {a: *l30}}\n"),
               Catch::Contains("the document holds more than 100000 values once its aliases are expanded"));
    // A mapping that holds itself: every walk went round for ever, and merging it into
    // itself read freed memory.
    CHECK_THAT(compare_error(head + "compare:\n  variants:\n    a: &t {o: *t}\n"),
               Catch::StartsWith("/exp/cmp.yaml:12:8: the document nests more than 64 levels deep"));
    CHECK_THAT(compare_error(head + "compare:\n  variants:\n    a: &t {x: 1, ? *t : 2}\n"),
               Catch::Contains("the document nests more than 64 levels deep"));   // the loop through a key
    CHECK_THAT(compare_error(head + "compare:\n  variants:\n    a: &t {x: 1, : *t}\n"),
               Catch::Contains("the document nests more than 64 levels deep"));   // under a null key
    CHECK(test::error_of([&] {
              bp::parse_experiment(head, "/exp/cmp.yaml", {"optimizer=&t {o: *t}"}, test::builtin_registry());
          }) == "--set optimizer=&t {o: *t}: the document nests more than 64 levels deep (an alias to a mapping inside "
                 "itself?)");
}

TEST_CASE("a comparison resumed with other epochs is refused before it rewrites its files", "[compare][checkpoint]") {
    namespace fs = std::filesystem;
    auto& registry = test::builtin_registry();
    const auto dir = test::temp_dir("compare-resume-epochs");
    const std::vector<std::string> sets = {"optimizer.schedule={name: cosine}", "compare.seeds=[4]"};
    const auto c = bp::parse_comparison(experiment, dir / "cmp.yaml", sets, registry);
    bp::RunOptions options;
    options.quiet = true;
    options.out = dir / "out";
    std::ostringstream log;
    bp::run_comparison(*c, registry, options, 2, log);
    const std::string json = test::read_file(dir / "out" / "comparison.json");
    options.out.clear();
    options.resume = dir / "out";
    auto with = [&](const std::string& epochs) {
        std::vector<std::string> more = sets;
        more.push_back("train.epochs=" + epochs);
        return bp::parse_comparison(experiment, dir / "cmp.yaml", more, registry);
    };
    // Fewer: refused before anything trains.
    CHECK_THAT(test::error_of([&] { bp::run_comparison(*with("4"), registry, options, 1, log); }),
               Catch::Contains("was made with train.epochs: 5, and 4 would end before it"));
    // More, under a cosine that the longer run would spread: refused as the run resumes,
    // at one run at a time or two.
    for (int jobs : {1, 2})
        CHECK_THAT(test::error_of([&] { bp::run_comparison(*with("7"), registry, options, jobs, log); }),
                   Catch::Contains("cannot be continued by this experiment: train.epochs: the schedule over 7 epochs"));
    CHECK(test::read_file(dir / "out" / "comparison.json") == json);
}
