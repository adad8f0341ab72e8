#include "compare/compare.hpp"

#include "train/progress.hpp"
#include "compare/report.hpp"
#include "train/run_files.hpp"

#include <nlohmann/json.hpp>
#include <tbb/info.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <cmath>
#include <cstdio>
#include <map>
#include <ostream>
#include <sstream>

namespace bp {

namespace fs = std::filesystem;

namespace {

const Evaluation& source(const EpochMetrics& m, const std::string& from) {
    return from == "test" ? m.test : from == "validation" ? m.validation : m.train;
}

double metric(const EpochMetrics& m, const std::string& name) {
    if (name == "test_accuracy") return m.test.accuracy;
    if (name == "test_loss") return m.test.loss;
    if (name == "validation_accuracy") return m.validation.accuracy;
    if (name == "validation_loss") return m.validation.loss;
    if (name == "train_accuracy") return m.train.accuracy;
    return m.train.loss;
}

// The first epoch (1-based) whose metric reaches the target, and the seconds spent
// up to its end; epoch 0 when none does.
std::pair<int64_t, double> time_to_target(const std::vector<EpochMetrics>& history, const CompareTarget& t) {
    const bool rising = t.metric.find("accuracy") != std::string::npos;
    double seconds = 0;
    for (const auto& m : history) {
        seconds += m.seconds;
        const double v = metric(m, t.metric);
        if (std::isfinite(v) && (rising ? v >= t.value : v <= t.value)) return {m.epoch, seconds};
    }
    return {0, seconds};
}

std::pair<double, double> mean_std(const std::vector<double>& v) {
    if (v.empty()) return {std::nan(""), std::nan("")};
    double mean = 0;
    for (double x : v) mean += x;
    mean /= double(v.size());
    double var = 0;
    for (double x : v) var += (x - mean) * (x - mean);
    return {mean, v.size() > 1 ? std::sqrt(var / double(v.size() - 1)) : std::nan("")};
}

double best_of(const std::vector<EpochMetrics>& history, const std::string& from) {
    double best = -INFINITY;
    for (const auto& m : history) best = std::max(best, source(m, from).accuracy);
    return best;
}

VariantStats statistics(const std::string& variant, const std::vector<const ComparisonRun*>& runs,
                        const std::optional<CompareTarget>& target, const std::string& from) {
    VariantStats s;
    s.variant = variant;
    std::vector<double> final_acc, best_acc, final_loss, epochs, seconds, speed;
    for (const auto* r : runs) {
        ++s.runs;
        const auto& h = r->result.history;
        if (!r->error.empty()) {
            ++s.failed;
            continue;
        }
        if (r->result.diverged || h.empty()) {
            ++s.diverged;
            continue;
        }
        final_acc.push_back(source(h.back(), from).accuracy);
        best_acc.push_back(best_of(h, from));
        final_loss.push_back(h.back().train.loss);
        double samples = 0, train_seconds = 0;
        for (const auto& m : h) samples += double(m.samples), train_seconds += m.train_seconds;
        speed.push_back(samples / train_seconds);
        if (target) {
            const auto [epoch, secs] = time_to_target(h, *target);
            if (epoch > 0) {
                ++s.reached;
                epochs.push_back(double(epoch));
                seconds.push_back(secs);
            }
        }
    }
    std::tie(s.final_accuracy, s.final_accuracy_std) = mean_std(final_acc);
    std::tie(s.best_accuracy, s.best_accuracy_std) = mean_std(best_acc);
    std::tie(s.final_train_loss, s.final_train_loss_std) = mean_std(final_loss);
    s.epochs_to_target = mean_std(epochs).first;
    s.seconds_to_target = mean_std(seconds).first;
    s.samples_per_second = mean_std(speed).first;
    return s;
}

const char* status(const ComparisonRun& run) {
    return !run.error.empty() ? "failed" : run.result.diverged ? "diverged" : "completed";
}

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::string csv_number(double v) {
    if (!std::isfinite(v)) return "";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

std::string comparison_csv(const Comparison& c, const ComparisonResult& r) {
    std::string out = "variant,seed,status,final_" + r.accuracy_source + "_accuracy,best_" + r.accuracy_source +
                      "_accuracy,final_train_loss,epochs_to_target,seconds_to_target,samples_per_second,dir\n";
    for (const auto& run : r.runs) {
        const auto& h = run.result.history;
        const bool ok = !run.result.diverged && !h.empty();
        std::string epochs, seconds;
        if (ok && c.target) {
            const auto [epoch, secs] = time_to_target(h, *c.target);
            if (epoch > 0) epochs = std::to_string(epoch), seconds = csv_number(secs);
        }
        double samples = 0, train_seconds = 0;
        for (const auto& m : h) samples += double(m.samples), train_seconds += m.train_seconds;
        out += run.variant + "," + std::to_string(run.seed) + "," + status(run) + "," +
               (ok ? csv_number(source(h.back(), r.accuracy_source).accuracy) : "") + "," +
               (ok ? csv_number(best_of(h, r.accuracy_source)) : "") + "," + (ok ? csv_number(h.back().train.loss) : "") +
               "," + epochs + "," + seconds + "," + csv_number(samples / train_seconds) + "," +
               fs::relative(run.result.dir, r.dir).string() + "\n";
    }
    return out;
}

std::string comparison_json(const Comparison& c, const ComparisonResult& r) {
    nlohmann::json j;
    j["name"] = c.name;
    j["seeds"] = c.seeds;
    j["accuracy_source"] = r.accuracy_source;
    if (c.target) j["target"] = {{"metric", c.target->metric}, {"value", c.target->value}};
    for (const auto& s : r.stats) {
        j["variants"].push_back({{"variant", s.variant},
                                 {"runs", s.runs},
                                 {"diverged", s.diverged},
                                 {"failed", s.failed},
                                 {"reached_target", s.reached},
                                 {"final_accuracy", {{"mean", number(s.final_accuracy)}, {"std", number(s.final_accuracy_std)}}},
                                 {"best_accuracy", {{"mean", number(s.best_accuracy)}, {"std", number(s.best_accuracy_std)}}},
                                 {"final_train_loss",
                                  {{"mean", number(s.final_train_loss)}, {"std", number(s.final_train_loss_std)}}},
                                 {"epochs_to_target", number(s.epochs_to_target)},
                                 {"seconds_to_target", number(s.seconds_to_target)},
                                 {"samples_per_second", number(s.samples_per_second)}});
    }
    for (const auto& run : r.runs) {
        j["runs"].push_back({{"variant", run.variant},
                             {"seed", run.seed},
                             {"status", status(run)},
                             {"error", run.error},
                             {"dir", fs::relative(run.result.dir, r.dir).string()},
                             {"weights_fingerprint", run.result.fingerprint}});
    }
    return j.dump(2) + "\n";
}

std::string plus_minus(double mean, double sd, const char* format) {
    if (!std::isfinite(mean)) return "-";
    char a[32], b[32];
    std::snprintf(a, sizeof a, format, mean);
    if (!std::isfinite(sd)) return a;   // one run: no spread to show
    std::snprintf(b, sizeof b, format, sd);
    return std::string(a) + " +- " + b;
}

// "0.07s", "3.2s", "1m12s": time to target is often well under a second.
std::string short_seconds(double s) {
    if (s >= 10) return human_seconds(s);
    char buf[32];
    std::snprintf(buf, sizeof buf, s < 1 ? "%.2fs" : "%.1fs", s);
    return buf;
}

// "train loss 0.0223  acc 0.9967  validation acc 0.9950": the metrics the run has.
std::string final_line(const EpochMetrics& m) {
    std::string out;
    char buf[64];
    auto add = [&](const char* name, double v) {
        if (!std::isfinite(v)) return;
        std::snprintf(buf, sizeof buf, "%s%s %.4f", out.empty() ? "" : "  ", name, v);
        out += buf;
    };
    add("train loss", m.train.loss);
    add("acc", m.train.accuracy);
    add("validation acc", m.validation.accuracy);
    add("test acc", m.test.accuracy);
    return out;
}

}  // namespace

std::string comparison_table(const Comparison& c, const ComparisonResult& r) {
    const std::string acc = r.accuracy_source + " acc";
    std::string out;
    char line[512];
    std::snprintf(line, sizeof line, "%-16s %5s  %-19s  %-19s  %-19s  %-17s  %9s\n", "variant", "runs",
                  ("final " + acc).c_str(), ("best " + acc).c_str(), "final train loss",
                  c.target ? ("to " + c.target->metric + " " + csv_number(c.target->value)).c_str() : "to target",
                  "samples/s");
    out += line;
    for (const auto& s : r.stats) {
        std::string target = "-";
        if (c.target) {
            char buf[64];
            if (s.reached > 0)
                std::snprintf(buf, sizeof buf, "%.1f ep %s (%d/%d)", s.epochs_to_target, short_seconds(s.seconds_to_target).c_str(),
                              s.reached, s.runs);
            else
                std::snprintf(buf, sizeof buf, "never (0/%d)", s.runs);
            target = buf;
        }
        const std::string runs = std::to_string(s.runs) + (s.diverged || s.failed ? "*" : "");
        std::snprintf(line, sizeof line, "%-16s %5s  %-19s  %-19s  %-19s  %-17s  %9s\n", s.variant.c_str(), runs.c_str(),
                      plus_minus(s.final_accuracy, s.final_accuracy_std, "%.4f").c_str(),
                      plus_minus(s.best_accuracy, s.best_accuracy_std, "%.4f").c_str(),
                      plus_minus(s.final_train_loss, s.final_train_loss_std, "%.4f").c_str(), target.c_str(),
                      std::isfinite(s.samples_per_second) ? human_count(s.samples_per_second).c_str() : "-");
        out += line;
    }
    bool any_diverged = false;
    bool any_failed = false;
    for (const auto& s : r.stats) any_diverged |= s.diverged > 0, any_failed |= s.failed > 0;
    if (any_diverged) out += "* some runs diverged (NaN or infinite loss); the figures leave them out\n";
    if (any_failed) out += "* some runs failed (see comparison.json); the figures leave them out\n";
    return out;
}

ComparisonResult run_comparison(const Comparison& c, const Registry& registry, const RunOptions& options, int jobs,
                                std::ostream& log) {
    ComparisonResult r;
    r.dir = options.out.empty() ? new_run_dir(options.runs_root, c.name) : options.out;
    fs::create_directories(r.dir);
    const std::size_t total = c.variants.size() * c.seeds.size();
    if (!options.quiet)
        log << "comparing " << c.variants.size() << " variants x " << c.seeds.size() << " seeds (" << total
            << " runs) in " << r.dir.string() << "\n";
    const auto start = std::chrono::steady_clock::now();
    // Every run in its slot, so the order of the files never depends on which ends first.
    r.runs.resize(total);
    std::mutex progress;   // guards r.runs, done and the progress lines
    std::size_t done = 0;
    tbb::task_arena* shared_arena = nullptr;
    // On a terminal, one line redrawn in place: the runs in flight and their epochs.
    std::map<std::size_t, int64_t> running;   // run index -> epochs done
    const int64_t epochs = c.runs[0][0].train.epochs;
    auto redraw = [&] {
        if (options.quiet || !options.terminal) return;
        std::string line = "\r\033[K[" + std::to_string(done) + "/" + std::to_string(total) + " done]";
        for (const auto& [i, e] : running)
            line += "  " + c.variants[i / c.seeds.size()] + " seed " + std::to_string(c.seeds[i % c.seeds.size()]) +
                    " epoch " + std::to_string(e) + "/" + std::to_string(epochs);
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        double progress_runs = double(done);
        for (const auto& [i, e] : running) progress_runs += double(e) / double(epochs);
        if (progress_runs > 0) line += "  ETA " + human_seconds(elapsed / progress_runs * (double(total) - progress_runs));
        log << line << std::flush;
    };
    auto train = [&](std::size_t i) {
        const std::size_t v = i / c.seeds.size(), s = i % c.seeds.size();
        RunOptions one = options;
        one.out = r.dir / c.variants[v] / ("seed-" + std::to_string(c.seeds[s]));
        one.resume.clear();
        one.quiet = true;
        one.arena = shared_arena;
        one.on_epoch = [&, i](const EpochMetrics& m) {
            const std::lock_guard lock(progress);
            running[i] = m.epoch;
            redraw();
        };
        std::ostringstream quiet;
        ComparisonRun run{c.variants[v], c.seeds[s], {}, {}};
        try {
            run.result = run_experiment(c.runs[v][s], registry, one, quiet);
        } catch (const std::exception& e) {   // one failed run does not cost the others
            run.error = e.what();
            run.result.dir = one.out;
        }
        const std::lock_guard lock(progress);
        r.runs[i] = std::move(run);
        ++done;
        running.erase(i);
        if (options.quiet) return;
        const auto& h = r.runs[i].result.history;
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const std::string what = !r.runs[i].error.empty() ? "FAILED: " + r.runs[i].error
                                 : r.runs[i].result.diverged ? "DIVERGED at epoch " + std::to_string(h.back().epoch)
                                                             : final_line(h.back());
        log << (options.terminal ? "\r\033[K" : "") << "[" << done << "/" << total << "] " << c.variants[v] << " seed " << c.seeds[s] << ": " << what << "  ("
            << human_seconds(elapsed) << ", ETA " << human_seconds(elapsed / double(done) * double(total - done))
            << ")\n";
        redraw();
        log << std::flush;
    };
    if (jobs <= 1) {
        for (std::size_t i = 0; i < total; ++i) train(i);
    } else {
        // One arena for every run, as wide as train.threads and no wider than the
        // machine (oneTBB caps workers at the cores the trainers allow): `jobs` runs at a
        // time, each run's shards nested in it.
        const int threads = c.runs[0][0].train.threads > 0 ? int(c.runs[0][0].train.threads)
                                                            : tbb::info::default_concurrency();
        tbb::task_arena arena(std::min(threads, tbb::info::default_concurrency()));
        shared_arena = &arena;
        arena.execute([&] {
            tbb::task_group group;
            std::atomic<std::size_t> next{0};
            for (int j = 0; j < std::min(jobs, arena.max_concurrency()); ++j)
                group.run([&] {
                    // Isolated: a worker waiting inside one run's parallel_for must not
                    // pick up another whole run and stall the first behind it.
                    tbb::this_task_arena::isolate([&] {
                        for (std::size_t i = next++; i < total; i = next++) train(i);
                    });
                });
            group.wait();
        });
    }
    // Accuracy from the test set when the runs have one, else validation, else training.
    r.accuracy_source = "train";
    for (const auto& run : r.runs) {
        if (run.result.history.empty()) continue;
        const auto& last = run.result.history.back();
        if (std::isfinite(last.test.accuracy)) r.accuracy_source = "test";
        else if (std::isfinite(last.validation.accuracy) && r.accuracy_source == "train") r.accuracy_source = "validation";
    }
    for (const auto& variant : c.variants) {
        std::vector<const ComparisonRun*> runs;
        for (const auto& run : r.runs)
            if (run.variant == variant) runs.push_back(&run);
        r.stats.push_back(statistics(variant, runs, c.target, r.accuracy_source));
    }
    write_file_atomic(r.dir / "comparison.csv", comparison_csv(c, r));
    write_file_atomic(r.dir / "comparison.json", comparison_json(c, r));
    const fs::path report = write_comparison_report(c, r);
    if (!options.quiet)
        log << "\n" << comparison_table(c, r) << "\nresults in " << r.dir.string() << "\nreport: " << report.string()
            << "\n";
    return r;
}

}  // namespace bp
