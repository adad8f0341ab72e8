// Suites: AlgoPerf's performance profile computed by hand; a suite file read into one
// comparison per workload with its errors placed in the suite; a suite run, and one
// cut at several points resumed to the same files.
#include "compare/suite.hpp"
#include "helpers.hpp"

#include <nlohmann/json.hpp>

#include <cmath>

namespace {

namespace fs = std::filesystem;

const std::string workload = R"(name: spiral_work
seed: 1
data: { source: two_spirals, samples: 400, validation_split: 0.25 }
model:
  - dense: { units: 16, activation: tanh }
  - dense: { units: 2 }
loss: softmax_cross_entropy
optimizer: { name: adam, lr: 0.01 }
train: { epochs: 10, batch_size: 32, checkpoint_every: 1 }
)";

const std::string suite = R"(name: small
seeds: [1, 2]
variants:
  adam: {}
  momentum: { optimizer: { name: sgd, lr: 0.1, momentum: 0.9 } }
workloads:
  easy:
    experiment: work.yaml
    target: { metric: val_accuracy, value: 0.6 }
    epochs: 4
  noisy:
    experiment: work.yaml
    target: { metric: val_accuracy, value: 0.7 }
    set: [data.noise=0.3]
    quick: { epochs: 2 }
quick:
  seeds: [3]
)";

// A suite and its workload's experiment in `dir`.
fs::path write_suite(const fs::path& dir, const std::string& text) {
    test::write_file(dir / "work.yaml", workload);
    return test::write_file(dir / "suite.yaml", text);
}

std::string suite_error(const std::string& text) {
    const auto dir = test::temp_dir("suite-errors");
    const fs::path file = write_suite(dir, text);
    return test::error_of([&] { bp::load_suite(file, {}, false, test::builtin_registry()); });
}

}  // namespace

TEST_CASE("the performance profile: ratios to the fastest, and the area under rho", "[suite]") {
    // Three workloads x three variants; no variant reaches the third workload's target.
    const double never = INFINITY;
    const bp::Profile p = bp::performance_profile({{10, 20, never}, {30, 15, 60}, {never, never, never}});
    CHECK(p.ratio[0] == std::vector<double>{1, 2, never});
    CHECK(p.ratio[1] == std::vector<double>{2, 1, 4});
    CHECK(std::isinf(p.ratio[2][0]));
    // area_v = sum over workloads within tau_max of (4 - ratio) / 3, over 3 workloads.
    CHECK(p.area[0] == Approx((3.0 + 2.0) / 9));
    CHECK(p.area[1] == Approx((2.0 + 3.0) / 9));
    CHECK(p.area[2] == 0);   // within 4x once, at exactly 4: no area
    CHECK(bp::profile_at(p, 0, 1) == Approx(1.0 / 3));
    CHECK(bp::profile_at(p, 0, 2) == Approx(2.0 / 3));
    CHECK(bp::profile_at(p, 2, 3.99) == 0);
    CHECK(bp::profile_at(p, 2, 4) == Approx(1.0 / 3));
    CHECK(bp::median_time({3, never, 5}) == 5);
    CHECK(std::isinf(bp::median_time({3, never})));   // half never reached it
    CHECK(bp::median_time({2, 4}) == 3);
}

TEST_CASE("a suite reads as one comparison per workload, quick mode merged over it", "[suite]") {
    const auto dir = test::temp_dir("suite-read");
    const fs::path file = write_suite(dir, suite);
    auto& registry = test::builtin_registry();
    const auto s = bp::load_suite(file, {}, false, registry);
    REQUIRE(s);
    CHECK(s->name == "small");
    CHECK(s->measure == bp::ProfileMeasure::epochs);
    REQUIRE(s->workloads.size() == 2);
    const bp::Comparison& easy = s->workloads[0].comparison;
    CHECK(easy.variants == std::vector<std::string>{"adam", "momentum"});
    CHECK(easy.seeds == std::vector<uint64_t>{1, 2});
    CHECK(easy.target->value == 0.6);
    CHECK(easy.runs[0][0].train.epochs == 4);   // the workload's budget
    CHECK(easy.runs[1][1].optimizer.name == "sgd");
    const bp::Comparison& noisy = s->workloads[1].comparison;
    CHECK(noisy.runs[0][0].train.epochs == 10);   // the experiment's own
    CHECK(noisy.runs[0][0].data.params.number("noise") == 0.3);
    CHECK(s->workloads[1].file == dir / "work.yaml");

    const auto quick = bp::load_suite(file, {}, true, registry);
    CHECK(quick->workloads[0].comparison.seeds == std::vector<uint64_t>{3});
    CHECK(quick->workloads[1].comparison.runs[0][0].train.epochs == 2);
    CHECK(quick->workloads[0].comparison.runs[0][0].train.epochs == 4);
    // --set reaches the suite's keys; a file without workloads is not a suite.
    const auto set = bp::load_suite(file, {"seeds=[7]"}, false, registry);
    CHECK(set->workloads[1].comparison.runs[0][0].seed == 7);
    CHECK_FALSE(bp::load_suite(dir / "work.yaml", {}, false, registry));
}

TEST_CASE("a bad suite is refused with its place in the suite", "[suite]") {
    // A variant's mistake is placed in the suite file, with the variant and the workload.
    const std::string bad_variant = std::string(suite).replace(suite.find("lr: 0.1"), 7, "lr: -1");
    CHECK_THAT(suite_error(bad_variant), Catch::Matches(".*suite.yaml:5:43: optimizer \\(sgd\\).lr = -1 .*") &&
                                             Catch::EndsWith("(in compare variant 'momentum') (in suite workload 'easy')"));
    const std::string target = "    target: { metric: val_accuracy, value: 0.6 }\n";
    CHECK_THAT(suite_error(std::string(suite).replace(suite.find(target), target.size(), "")),
               Catch::Contains("suite.yaml:8:5: workload 'easy' (the performance profile times each variant to it) "
                               "needs 'target'"));
    CHECK_THAT(suite_error(std::string(suite).replace(suite.find("work.yaml"), 9, "gone.yaml")),
               Catch::Contains("suite.yaml:8:17: ") && Catch::Contains("gone.yaml"));
    CHECK_THAT(suite_error(suite + "measure: minutes\n"), Catch::Contains("measure must be epochs or seconds, not minutes"));
    CHECK_THAT(suite_error(suite + "variant: {}\n"), Catch::Contains("'variant'") && Catch::Contains("variants"));
    CHECK_THAT(suite_error(std::string(suite).replace(suite.find("  noisy:"), 8, "  suite.csv:")),
               Catch::Contains("workload name 'suite.csv' is the name of a file the suite writes"));
    CHECK_THAT(suite_error(suite + "  name: tiny\n"), Catch::Contains("quick cannot rename the suite"));
    // A workload's set: entry is placed at the entry, not blamed on a --set nobody gave.
    const std::string bad_set = std::string(suite).replace(suite.find("data.noise"), 10, "data.noyse");
    CHECK_THAT(suite_error(bad_set), Catch::Matches(".*suite.yaml:14:11: set data.noyse=0.3: unknown key 'noyse' in data.*") &&
                                         !Catch::Contains("--set"));
    // A quick: block is checked in the full mode too: its mistakes wait for no --quick.
    const std::string bad_quick = std::string(suite).replace(suite.find("{ epochs: 2 }"), 13, "{ epochz: 2 }");
    CHECK_THAT(suite_error(bad_quick), Catch::Contains("suite.yaml:15:14: unknown key 'epochz' in workload 'noisy'") &&
                                           Catch::EndsWith("(in --quick mode, read only to check it)"));
    const std::string bad_entry = std::string(suite).replace(suite.find("data.noise=0.3"), 14, "data.noise");
    CHECK_THAT(suite_error(bad_entry), Catch::Matches(".*suite.yaml:14:11: set data.noise: expected KEY.PATH=VALUE, "
                                                      "e.g. set: \\[train.epochs=3\\].*"));
    // A drawn value out of range names its place in the suite and the trial that drew it.
    CHECK_THAT(suite_error(std::string(suite).replace(suite.find("momentum: 0.9"), 13, "momentum: { uniform: [1.5, 2] }") +
                           "tuning: { trials: 2 }\n"),
               Catch::Matches(".*suite.yaml:5:58 \\(optimizer.momentum drawn as 1\\.[0-9]+ in trial 1\\): .*out of range.*"));
    const auto dir = test::temp_dir("suite-own-compare");
    const fs::path file = write_suite(dir, suite);
    test::write_file(dir / "work.yaml", workload + "compare: { variants: { a: {} } }\n");
    CHECK_THAT(test::error_of([&] { bp::load_suite(file, {}, false, test::builtin_registry()); }),
               Catch::Contains("work.yaml:10:10: workload 'easy' is a suite's") &&
                   Catch::Contains("cannot have a compare: block of its own"));
}

namespace {

bp::SuiteResult run_quietly(const bp::Suite& s, bp::RunOptions options) {
    options.quiet = true;
    std::ostringstream log;
    return bp::run_suite(s, test::builtin_registry(), options, 2, log);
}

}  // namespace

TEST_CASE("a suite runs every workload's comparison and profiles the variants over them", "[suite]") {
    const auto dir = test::temp_dir("suite-run");
    const auto s = bp::load_suite(write_suite(dir, suite), {}, false, test::builtin_registry());
    bp::RunOptions options;
    options.out = dir / "out";
    const auto r = run_quietly(*s, options);
    REQUIRE(r.workloads.size() == 2);
    CHECK(r.workloads[1].dir == dir / "out" / "noisy");
    CHECK(fs::exists(dir / "out" / "easy" / "momentum" / "seed-2" / "summary.json"));
    // Each time is the median over the seeds of the epochs to the workload's target.
    for (std::size_t w = 0; w < 2; ++w)
        for (std::size_t v = 0; v < 2; ++v) {
            std::vector<double> epochs;
            for (const auto& run : r.workloads[w].runs)
                if (run.variant == r.variants[v]) {
                    const int64_t e = bp::time_to_target(run.result.history, *s->workloads[w].comparison.target).first;
                    epochs.push_back(e > 0 ? double(e) : INFINITY);
                }
            REQUIRE(epochs.size() == 2);
            const double median = (epochs[0] + epochs[1]) / 2;
            CHECK((r.times[w][v] == median || (std::isinf(median) && std::isinf(r.times[w][v]))));
        }
    CHECK(r.profile.area == bp::performance_profile(r.times).area);
    CHECK(r.profile.area[r.ranking[0]] >= r.profile.area[r.ranking[1]]);
    const auto j = nlohmann::json::parse(test::read_file(dir / "out" / "suite.json"));
    CHECK(j["variants"][0]["variant"] == r.variants[r.ranking[0]]);
    CHECK(j["variants"][0]["profile_area"] == Approx(r.profile.area[r.ranking[0]]));
    CHECK(j["workloads"][1]["workload"] == "noisy");
    const std::string csv = test::read_file(dir / "out" / "suite.csv");
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 5);
    const std::string html = test::read_file(dir / "out" / "report.html");
    CHECK_THAT(html, Catch::Contains("<a href=\"easy/report.html\">") && Catch::Contains("id=\"profile\""));
    CHECK_THAT(html, Catch::Contains("class=\"line\" data-series=\"adam (area "));
    CHECK_THAT(bp::suite_table(*s, r), Catch::StartsWith("rank  variant") && Catch::Contains("easy"));
    // A suite's folder is refused as --out unless replaced, like a run's; a comparison's
    // folder is not a suite's to resume, nor a suite's a comparison's.
    CHECK_THAT(test::error_of([&] { run_quietly(*s, options); }), Catch::Contains("already holds results"));
    bp::RunOptions resume;
    resume.resume = dir / "out" / "easy";
    CHECK_THAT(test::error_of([&] { run_quietly(*s, resume); }), Catch::Contains("is a run's or a comparison's folder, not a suite's"));
    resume.resume = dir / "out";
    resume.quiet = true;
    std::ostringstream log;
    CHECK_THAT(test::error_of([&] { bp::run_comparison(s->workloads[0].comparison, test::builtin_registry(), resume, 1, log); }),
               Catch::Contains("is a suite's folder, not a comparison's"));
}

TEST_CASE("a suite cut at several points resumes to the same files", "[suite][checkpoint]") {
    const auto dir = test::temp_dir("suite-resume");
    const auto s = bp::load_suite(write_suite(dir, suite), {}, false, test::builtin_registry());
    bp::RunOptions options;
    options.out = dir / "whole";
    const auto whole = run_quietly(*s, options);

    // As a kill -9 leaves it: the first workload's momentum seed 2 after its second
    // epoch, its files not yet written; the second workload not begun.
    const fs::path cut = dir / "cut";
    fs::copy(dir / "whole", cut, fs::copy_options::recursive);
    const fs::path mid = cut / "easy" / "momentum" / "seed-2";
    fs::copy_file(mid / "checkpoints" / "epoch-0002.safetensors", mid / "checkpoints" / "last.safetensors",
                  fs::copy_options::overwrite_existing);
    fs::remove(mid / "summary.json");
    for (const char* file : {"comparison.csv", "comparison.json", "report.html"}) fs::remove(cut / "easy" / file);
    fs::remove_all(cut / "noisy");
    for (const char* file : {"suite.csv", "suite.json", "report.html", "profile.svg"}) fs::remove(cut / file);

    options.out.clear();
    options.resume = cut;
    const auto resumed = run_quietly(*s, options);
    for (std::size_t w = 0; w < 2; ++w)
        for (std::size_t i = 0; i < whole.workloads[w].runs.size(); ++i)
            CHECK(resumed.workloads[w].runs[i].result.fingerprint == whole.workloads[w].runs[i].result.fingerprint);
    // The suite's files hold no clock when it measures epochs: the same bytes.
    for (const char* file : {"suite.csv", "suite.json", "report.html", "profile.svg"})
        CHECK(test::read_file(cut / file) == test::read_file(dir / "whole" / file));
}
