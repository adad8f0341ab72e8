// The run folder: claimed whole by one run, never overwritten without being asked,
// continued only by the experiment that made it.
#include "model/experiment.hpp"
#include "helpers.hpp"
#include "train/run.hpp"
#include "train/run_files.hpp"

#include <set>
#include <thread>

namespace fs = std::filesystem;

namespace {

bp::Experiment spirals(const std::vector<std::string>& sets = {}) {
    std::vector<std::string> all = {"train.epochs=4", "data.samples=200"};
    all.insert(all.end(), sets.begin(), sets.end());
    return bp::load_experiment(fs::path(BACKPLANE_EXPERIMENTS) / "spirals.yaml", all, test::builtin_registry());
}

bp::RunResult run(const bp::Experiment& e, const fs::path& out, bool overwrite = false, const fs::path& resume = {},
                  int64_t stop_after = 0) {
    bp::RunOptions options;
    options.out = out;
    options.resume = resume;
    options.overwrite = overwrite;
    options.stop_after = stop_after;
    options.quiet = true;
    std::ostringstream log;
    return bp::run_experiment(e, test::builtin_registry(), options, log);
}

}  // namespace

TEST_CASE("runs started in the same second get folders of their own", "[files]") {
    const auto root = test::temp_dir("claim");
    std::vector<fs::path> got(16);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < got.size(); ++i) threads.emplace_back([&, i] { got[i] = bp::new_run_dir(root, "x"); });
    for (auto& t : threads) t.join();
    CHECK(std::set<fs::path>(got.begin(), got.end()).size() == got.size());
    for (const auto& dir : got) CHECK(fs::is_directory(dir));
}

TEST_CASE("a run refuses a folder that holds results, unless asked to overwrite them", "[files]") {
    const auto dir = test::temp_dir("refuse") / "run";
    const auto first = run(spirals(), dir);
    const std::string summary = test::read_file(dir / "summary.json");
    const auto msg = test::error_of([&] { run(spirals({"seed=2"}), dir); });
    CHECK_THAT(msg, Catch::StartsWith("the run folder " + dir.string() + " already holds results") &&
                        Catch::Contains("--resume " + dir.string()) && Catch::Contains("another --out") &&
                        Catch::Contains("--overwrite"));
    CHECK(test::read_file(dir / "summary.json") == summary);   // untouched
    // Asked: the old results go, the new run's files replace them whole.
    bp::Experiment shorter = spirals({"seed=2", "train.epochs=2", "train.checkpoint_every=1"});
    const auto second = run(shorter, dir, true);
    CHECK(second.fingerprint != first.fingerprint);
    CHECK_THAT(test::read_file(dir / "summary.json"), Catch::Contains(second.fingerprint));
    CHECK(fs::exists(dir / "checkpoints" / "epoch-0002.safetensors"));
    // An empty folder is no result: it is used as it is.
    const auto empty = test::temp_dir("refuse-empty");
    CHECK_NOTHROW(run(spirals(), empty));
}

TEST_CASE("resuming refuses a changed experiment, listing what changed", "[files][checkpoint]") {
    const auto dir = test::temp_dir("resume-changed") / "run";
    run(spirals(), dir, false, {}, 2);
    const std::string config = test::read_file(dir / "config.yaml");
    const auto msg = test::error_of([&] { run(spirals({"optimizer.lr=0.01", "model.0.units=32"}), {}, false, dir); });
    CHECK_THAT(msg, Catch::Contains("cannot be continued by this experiment") && Catch::Contains("optimizer.lr: 0.005 -> 0.01") && Catch::Contains("model.0.dense.units: 64 -> 32") &&
                        Catch::Contains("resume it with the experiment it was made with"));
    CHECK(test::read_file(dir / "config.yaml") == config);   // nothing written
    // The length and the threads may change: neither changes what the epochs compute.
    const auto longer = run(spirals({"train.epochs=5", "train.threads=1"}), {}, false, dir);
    CHECK(longer.history.size() == 5);
    const auto straight = run(spirals({"train.epochs=5"}), test::temp_dir("resume-straight") / "run");
    CHECK(longer.fingerprint == straight.fingerprint);
}

TEST_CASE("resuming refuses a length that changes the epochs already run", "[files][checkpoint]") {
    const auto dir = test::temp_dir("resume-length") / "run";
    run(spirals({"optimizer.schedule.name=cosine"}), dir, false, {}, 3);
    const std::string last = test::read_file(dir / "checkpoints" / "last.safetensors");
    // Fewer epochs than were run: the history would not be this experiment's.
    CHECK_THAT(test::error_of([&] { run(spirals({"optimizer.schedule.name=cosine", "train.epochs=2"}), {}, false, dir); }),
               Catch::Contains("train.epochs: 2 is fewer than the 3 epochs the run has done"));
    // A cosine spread over more epochs gives the epochs run so far other rates.
    CHECK_THAT(test::error_of([&] { run(spirals({"optimizer.schedule.name=cosine", "train.epochs=8"}), {}, false, dir); }),
               Catch::Contains("train.epochs: the schedule over 8 epochs gives epoch 2 the rate") &&
                   Catch::Contains("start a new run"));
    CHECK(test::read_file(dir / "checkpoints" / "last.safetensors") == last);   // nothing written
    // The length it was made with finishes it.
    CHECK(run(spirals({"optimizer.schedule.name=cosine"}), {}, false, dir).history.size() == 4);
}

TEST_CASE("resuming takes a run folder, not a file", "[files][checkpoint]") {
    const auto dir = test::temp_dir("resume-file") / "run";
    run(spirals(), dir, false, {}, 2);
    const auto file = dir / "checkpoints" / "last.safetensors";
    CHECK_THAT(test::error_of([&] { run(spirals(), {}, false, file); }),
               Catch::Equals("--resume " + file.string() + ": give the run's folder (it continues from its "
                             "checkpoints/last.safetensors)"));
}

TEST_CASE("overwriting never removes what Backplane did not write", "[files]") {
    const auto dir = test::temp_dir("overwrite-foreign") / "run";
    run(spirals(), dir);
    const auto summary = test::read_file(dir / "summary.json");
    test::write_file(dir / "notes.txt", "my notes");
    CHECK_THAT(test::error_of([&] { run(spirals({"seed=2"}), dir, true); }),
               Catch::Equals("the folder " + dir.string() + " holds what Backplane did not write there (notes.txt); "
                             "give --out a new or empty folder"));
    CHECK(test::read_file(dir / "notes.txt") == "my notes");
    CHECK(test::read_file(dir / "summary.json") == summary);
    // A link where a run's folder would be: removing it could follow it elsewhere.
    fs::remove(dir / "notes.txt");
    const auto elsewhere = test::temp_dir("overwrite-elsewhere");
    test::write_file(elsewhere / "keep.safetensors", "precious");
    fs::remove_all(dir / "checkpoints");
    fs::create_directory_symlink(elsewhere, dir / "checkpoints");
    CHECK_THAT(test::error_of([&] { run(spirals({"seed=2"}), dir, true); }),
               Catch::Contains("holds what Backplane did not write there (checkpoints)"));
    CHECK(test::read_file(elsewhere / "keep.safetensors") == "precious");
}

TEST_CASE("overwriting knows a run's steps.csv, and no file of the user's that looks like a chart", "[files]") {
    const auto dir = test::temp_dir("overwrite-steps") / "run";
    run(spirals({"train.diagnostics_every=10"}), dir);
    REQUIRE(fs::exists(dir / "steps.csv"));
    CHECK_NOTHROW(run(spirals({"seed=2"}), dir, true));   // steps.csv is the run's own
    CHECK_FALSE(fs::exists(dir / "steps.csv"));
    // A comparison's folder holding the user's own picture beside the charts.
    const auto folder = test::temp_dir("overwrite-svg");
    run(spirals(), folder / "adam" / "seed-1");
    test::write_file(folder / "loss_vs_epoch.svg", "<svg/>");
    test::write_file(folder / "search_2.svg", "<svg/>");
    CHECK_NOTHROW(bp::claim_out_dir(folder, "comparison", true));
    run(spirals(), folder / "adam" / "seed-1");
    test::write_file(folder / "logo.svg", "<svg/>");
    CHECK_THAT(test::error_of([&] { bp::claim_out_dir(folder, "comparison", true); }),
               Catch::Contains("holds what Backplane did not write there (logo.svg)"));
    CHECK(fs::exists(folder / "adam" / "seed-1" / "summary.json"));
    // A folder of a lone report is not a suite's workload.
    const auto suite = test::temp_dir("overwrite-suite");
    test::write_file(suite / "suite.json", "{}");
    fs::create_directories(suite / "notes");
    test::write_file(suite / "notes" / "report.html", "mine");
    CHECK_THAT(test::error_of([&] { bp::claim_out_dir(suite, "suite", true); }),
               Catch::Contains("holds what Backplane did not write there (notes)"));
}

TEST_CASE("a resumed run removes the temporary files of writes killed before their rename", "[files][checkpoint]") {
    const auto dir = test::temp_dir("resume-temporaries") / "run";
    run(spirals(), dir, false, {}, 2);
    test::write_file(dir / "checkpoints" / "last.safetensors.tmp.1230.8524064866712807985", "half");
    test::write_file(dir / "metrics.csv.tmp.1230.17", "half");
    run(spirals(), {}, false, dir);
    CHECK_FALSE(fs::exists(dir / "checkpoints" / "last.safetensors.tmp.1230.8524064866712807985"));
    CHECK_FALSE(fs::exists(dir / "metrics.csv.tmp.1230.17"));
    CHECK(fs::exists(dir / "checkpoints" / "last.safetensors"));
}
