#include "compare/compare.hpp"

#include "train/progress.hpp"
#include "compare/report.hpp"
#include "compare/run_queue.hpp"
#include "train/run_files.hpp"
#include "text/format.hpp"
#include "text/suggest.hpp"

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
#include <iostream>
#include <map>
#include <ostream>
#include <sstream>
#include <thread>

namespace bp {

namespace fs = std::filesystem;

namespace {

// The first epoch (1-based) whose metric reaches the target, and the seconds spent
// up to its end; epoch 0 when none does.
std::pair<int64_t, double> time_to_target(const std::vector<EpochMetrics>& history, const CompareTarget& t) {
    const bool rising = !lower_is_better(t.metric);
    double seconds = 0;
    for (const auto& m : history) {
        seconds += m.seconds;
        const double v = m.get(t.metric);
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

double best_of(const std::vector<EpochMetrics>& history, Metric accuracy) {
    double best = -INFINITY;
    for (const auto& m : history) best = std::max(best, m.get(accuracy));
    return best;
}

}  // namespace

double at_best_validation(const std::vector<EpochMetrics>& history, Metric accuracy) {
    double best = -INFINITY, at = std::nan("");
    for (const auto& m : history)
        if (m.validation.accuracy > best) best = m.validation.accuracy, at = m.get(accuracy);
    return at;
}

namespace {

// The bootstrap's stream: fixed, so a comparison's report is the same every time.
constexpr uint64_t bootstrap_seed = 1;

// The final accuracy of each seed's run of `variant`, NaN where it diverged or failed.
std::vector<double> finals_by_seed(const ComparisonResult& r, const std::string& variant) {
    std::vector<double> finals;
    for (const auto& run : r.runs) {
        if (run.variant != variant) continue;
        const auto& h = run.result.history;
        const bool ok = run.error.empty() && !run.result.diverged && !h.empty();
        finals.push_back(ok ? h.back().get(r.accuracy) : std::nan(""));
    }
    return finals;
}

// Every variant against the one with the highest mean final accuracy, paired by seed:
// Wilcoxon signed-rank p-values, Holm-adjusted over the variants compared.
void compare_with_best(ComparisonResult& r) {
    std::size_t best = 0;
    for (std::size_t v = 1; v < r.stats.size(); ++v)
        if (std::isfinite(r.stats[v].final_accuracy) &&
            !(r.stats[v].final_accuracy <= r.stats[best].final_accuracy))
            best = v;
    const std::vector<double> best_finals = finals_by_seed(r, r.stats[best].variant);
    std::vector<double> p;
    std::vector<std::size_t> tested;
    for (std::size_t v = 0; v < r.stats.size(); ++v) {
        VariantStats& s = r.stats[v];
        s.best = r.stats[best].variant;
        s.p_vs_best = std::nan("");
        if (v == best) continue;
        const std::vector<double> finals = finals_by_seed(r, s.variant);
        std::vector<double> differences;
        for (std::size_t k = 0; k < finals.size(); ++k)
            if (std::isfinite(finals[k]) && std::isfinite(best_finals[k])) differences.push_back(finals[k] - best_finals[k]);
        s.pairs = int(differences.size());
        if (differences.empty()) continue;
        p.push_back(wilcoxon_signed_rank(differences));
        tested.push_back(v);
    }
    const std::vector<double> adjusted = holm(p);
    for (std::size_t k = 0; k < tested.size(); ++k) r.stats[tested[k]].p_vs_best = adjusted[k];
}

VariantStats statistics(const std::string& variant, const std::vector<const ComparisonRun*>& runs,
                        const std::optional<CompareTarget>& target, Metric accuracy) {
    VariantStats s;
    s.variant = variant;
    std::vector<double> final_acc, selected_acc, best_acc, final_loss, epochs, seconds, speed;
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
        final_acc.push_back(h.back().get(accuracy));
        best_acc.push_back(best_of(h, accuracy));
        if (const double a = at_best_validation(h, accuracy); std::isfinite(a)) selected_acc.push_back(a);
        final_loss.push_back(h.back().train.loss);
        speed.push_back(samples_per_second(h));
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
    s.final_accuracy_ci = bootstrap_mean_interval(final_acc, bootstrap_seed);
    std::tie(s.selected_accuracy, s.selected_accuracy_std) = mean_std(selected_acc);
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

std::string comparison_csv(const Comparison& c, const ComparisonResult& r) {
    const std::string accuracy = to_string(r.accuracy);
    std::string out = "variant,seed,status,final_" + accuracy + ",best_" + accuracy + ",final_train_loss,epochs_to_target,seconds_to_target,samples_per_second,dir\n";
    for (const auto& run : r.runs) {
        const auto& h = run.result.history;
        const bool ok = !run.result.diverged && !h.empty();
        std::string epochs, seconds;
        if (ok && c.target) {
            const auto [epoch, secs] = time_to_target(h, *c.target);
            if (epoch > 0) epochs = std::to_string(epoch), seconds = csv_number(secs);
        }
        out += run.variant + "," + std::to_string(run.seed) + "," + status(run) + "," +
               (ok ? csv_number(h.back().get(r.accuracy)) : "") + "," +
               (ok ? csv_number(best_of(h, r.accuracy)) : "") + "," + (ok ? csv_number(h.back().train.loss) : "") +
               "," + epochs + "," + seconds + "," + csv_number(samples_per_second(h)) + "," +
               fs::relative(run.result.dir, r.dir).string() + "\n";
    }
    return out;
}

std::string comparison_json(const Comparison& c, const ComparisonResult& r) {
    nlohmann::json j;
    j["name"] = c.name;
    j["seeds"] = c.seeds;
    j["accuracy"] = to_string(r.accuracy);
    if (c.target) j["target"] = {{"metric", to_string(c.target->metric)}, {"value", c.target->value}};
    for (const auto& s : r.stats) {
        j["variants"].push_back({{"variant", s.variant},
                                 {"runs", s.runs},
                                 {"diverged", s.diverged},
                                 {"failed", s.failed},
                                 {"reached_target", s.reached},
                                 {"final_accuracy",
                                  {{"mean", json_number(s.final_accuracy)},
                                   {"std", json_number(s.final_accuracy_std)},
                                   {"ci95", {json_number(s.final_accuracy_ci.low), json_number(s.final_accuracy_ci.high)}}}},
                                 {"vs_best", {{"variant", s.best}, {"pairs", s.pairs}, {"p_holm", json_number(s.p_vs_best)}}},
                                 {"at_best_validation",
                                  {{"mean", json_number(s.selected_accuracy)}, {"std", json_number(s.selected_accuracy_std)}}},
                                 {"best_accuracy", {{"mean", json_number(s.best_accuracy)}, {"std", json_number(s.best_accuracy_std)}}},
                                 {"final_train_loss",
                                  {{"mean", json_number(s.final_train_loss)}, {"std", json_number(s.final_train_loss_std)}}},
                                 {"epochs_to_target", json_number(s.epochs_to_target)},
                                 {"seconds_to_target", json_number(s.seconds_to_target)},
                                 {"samples_per_second", json_number(s.samples_per_second)}});
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


}  // namespace

ComparisonTable comparison_rows(const Comparison& c, const ComparisonResult& r) {
    const std::string acc = to_string(r.accuracy);
    // The honest column: only where it differs from the others (test figures chosen by validation).
    bool selected = false;
    for (const auto& s : r.stats) selected |= r.accuracy == Metric::test_accuracy && std::isfinite(s.selected_accuracy);
    ComparisonTable t;
    t.header = {"variant", "runs", "final " + acc + " [95% CI]", "p vs best"};
    if (selected) t.header.push_back(acc + " at best val");
    t.header.insert(t.header.end(), {"best " + acc, "final train_loss",
                                     c.target ? "to " + std::string(to_string(c.target->metric)) + " " + csv_number(c.target->value)
                                              : "to target",
                                     "samples/s"});
    bool any_significant = false, any_diverged = false, any_failed = false;
    int most_pairs = 0;
    for (const auto& s : r.stats) {
        std::vector<std::string> row = {s.variant, std::to_string(s.runs) + (s.diverged || s.failed ? "*" : "")};
        row.push_back(plus_minus(s.final_accuracy, std::nan(""), "%.4f") +
                      (std::isfinite(s.final_accuracy_ci.low)
                           ? " [" + plus_minus(s.final_accuracy_ci.low, std::nan(""), "%.4f") + ", " +
                                 plus_minus(s.final_accuracy_ci.high, std::nan(""), "%.4f") + "]"
                           : ""));
        std::string p = s.variant == s.best ? "best" : "-";
        if (std::isfinite(s.p_vs_best)) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.3g", s.p_vs_best);
            p = buf;
            if (s.p_vs_best < 0.05) p += " sig.", any_significant = true;
        }
        row.push_back(p);
        if (selected) row.push_back(plus_minus(s.selected_accuracy, s.selected_accuracy_std, "%.4f"));
        row.push_back(plus_minus(s.best_accuracy, s.best_accuracy_std, "%.4f"));
        row.push_back(plus_minus(s.final_train_loss, s.final_train_loss_std, "%.4f"));
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
        row.push_back(target);
        row.push_back(std::isfinite(s.samples_per_second) ? human_count(s.samples_per_second) : "-");
        t.rows.push_back(std::move(row));
        any_diverged |= s.diverged > 0, any_failed |= s.failed > 0;
        most_pairs = std::max(most_pairs, s.pairs);
    }
    if (any_diverged) t.notes.push_back("* some runs diverged (NaN or infinite loss); the figures leave them out");
    if (any_failed) t.notes.push_back("* some runs failed (see comparison.json); the figures leave them out");
    if (r.stats.size() > 1) {
        std::string note = "p vs best: Wilcoxon signed-rank over the seeds both finished, Holm-adjusted";
        if (any_significant) note += "; sig.: p < 0.05";
        // Exact p-values have a floor: 2 / 2^n for n pairs, above 0.05 up to 5 pairs.
        if (most_pairs > 0 && most_pairs < 6)
            note += "; with " + std::to_string(most_pairs) + " seeds no p can be below " +
                    shortest_double(std::ldexp(1.0, 1 - most_pairs)) + " (6 or more seeds can reach 0.05)";
        t.notes.push_back(note);
    }
    if (selected)
        t.notes.push_back(acc + " at best val: at each run's epoch of highest val_accuracy; best " + acc +
                          " picks the epoch by " + acc + " itself (optimistic)");
    return t;
}

std::string comparison_table(const Comparison& c, const ComparisonResult& r) {
    const ComparisonTable t = comparison_rows(c, r);
    std::vector<std::size_t> width(t.header.size(), 0);
    for (std::size_t k = 0; k < width.size(); ++k) {
        width[k] = t.header[k].size();
        for (const auto& row : t.rows) width[k] = std::max(width[k], row[k].size());
    }
    auto line = [&](const std::vector<std::string>& cells) {
        std::string out;
        for (std::size_t k = 0; k < cells.size(); ++k) {
            // Names to the left, figures to the right.
            const std::string pad(width[k] - cells[k].size(), ' ');
            out += (k == 0 ? cells[k] + pad : pad + cells[k]) + (k + 1 < cells.size() ? "  " : "");
        }
        return out + "\n";
    };
    std::string out = line(t.header);
    for (const auto& row : t.rows) out += line(row);
    for (const auto& note : t.notes) out += note + "\n";
    return out;
}

namespace {

fs::path run_dir(const Comparison& c, const fs::path& dir, std::size_t i) {
    return dir / c.variants[i / c.seeds.size()] / ("seed-" + std::to_string(c.seeds[i % c.seeds.size()]));
}

// The comparison's folder: a new one, the --out given (refused when it holds
// results, unless they are to be replaced), or the one --resume continues.
fs::path comparison_dir(const Comparison& c, const RunOptions& options) {
    if (!options.resume.empty()) {
        if (!fs::is_directory(options.resume))
            throw Error("--resume " + options.resume.string() + ": no such comparison folder");
        if (fs::exists(options.resume / "summary.json") || fs::exists(options.resume / "checkpoints"))
            throw Error("--resume " + options.resume.string() + " is a single run's folder, not a comparison's; "
                        "resume it with the experiment that made it");
        remove_temporaries(options.resume);
        return options.resume;
    }
    if (options.out.empty()) return new_run_dir(options.runs_root, c.name);
    claim_out_dir(options.out, "comparison", options.overwrite);
    return options.out;
}

// A run of the comparison being continued: finished (its summary read back, so it is
// not trained again), cut (continued from its last checkpoint) or not begun.
enum class RunState { fresh, cut, finished };

RunState state_of(const Experiment& e, const fs::path& dir) {
    if (!fs::exists(dir / "config.yaml")) return RunState::fresh;
    // Made by this experiment? A longer one continues the run, if its checkpoint allows.
    const std::string saved = read_experiment_file(dir / "config.yaml");
    if (const auto refused = config_changes_refused(saved, e); !refused.empty())
        throw Error("the run in " + dir.string() + " was made by another experiment: " + join(refused, "; ") +
                    "; resume the comparison with the file it was made with, or start a new one");
    bool longer = false;
    for (const auto& change : experiment_changes(saved, to_yaml(e))) longer |= change.rfind("train.epochs:", 0) == 0;
    if (!longer && fs::exists(dir / "summary.json")) return RunState::finished;
    return fs::exists(dir / "checkpoints" / "last.safetensors") ? RunState::cut : RunState::fresh;
}

RunResult finished_result(const fs::path& dir) {
    const RunSummary s = read_summary(dir / "summary.json");
    RunResult r;
    r.dir = dir;
    r.history = s.history;
    r.diverged = s.status == "diverged";
    r.fingerprint = s.weights_fingerprint;
    return r;
}

}  // namespace

ComparisonResult run_comparison(const Comparison& c, const Registry& registry, const RunOptions& options, int jobs,
                                std::ostream& log) {
    ComparisonResult r;
    // Over several processes, rank 0 leads: it keeps the queue, the table and every
    // file but the runs' own, and prints.
    Cluster* cluster = options.cluster;
    const bool leads = !cluster || cluster->rank() == 0;
    const std::size_t total = c.variants.size() * c.seeds.size();
    // Every run in its slot, so the order of the files never depends on which ends first.
    r.runs.resize(total);
    std::vector<RunState> states(total, RunState::fresh);
    std::size_t done = 0, cut = 0;
    auto prepare = [&] {
        if (cluster) {
            std::vector<Experiment> all;
            for (const auto& runs : c.runs) all.insert(all.end(), runs.begin(), runs.end());
            check_same_experiments(*cluster, all);
        }
        if (!leads) return;
        r.dir = comparison_dir(c, options);
        if (options.resume.empty()) return;
        // Every run is checked before any is trained: a changed experiment changes nothing.
        for (std::size_t i = 0; i < total; ++i)
            states[i] = state_of(c.runs[i / c.seeds.size()][i % c.seeds.size()], run_dir(c, r.dir, i));
        for (std::size_t i = 0; i < total; ++i) {
            if (states[i] == RunState::cut) ++cut;
            if (states[i] != RunState::finished) continue;
            r.runs[i] = {c.variants[i / c.seeds.size()], c.seeds[i % c.seeds.size()], finished_result(run_dir(c, r.dir, i)), {}};
            ++done;
        }
    };
    if (cluster) {
        cluster->agree(prepare);
        r.dir = cluster->broadcast(r.dir.string());
    } else {
        prepare();
    }
    std::deque<RunQueue::Assignment> todo;   // rank 0's (the others ask it)
    for (std::size_t i = 0; i < total; ++i)
        if (states[i] != RunState::finished) todo.push_back({i, states[i] == RunState::cut});
    RunQueue queue(cluster, std::move(todo));
    const bool quiet = options.quiet || !leads;
    if (!quiet) {
        log << "comparing " << c.variants.size() << " variants x " << c.seeds.size() << " seeds (" << total
            << " runs) in " << r.dir.string();
        if (cluster) log << " over " << cluster->size() << " processes";
        log << "\n";
        if (!options.resume.empty())
            log << "resuming: " << done << " runs finished, " << cut << " continue from their last checkpoint, "
                << total - done - cut << " to run\n";
    }
    const auto start = std::chrono::steady_clock::now();
    const std::size_t done_before = done;
    std::mutex progress;   // guards r.runs, done and the progress lines
    tbb::task_arena* shared_arena = nullptr;
    // On a terminal, one line redrawn in place: the runs in flight and their epochs.
    std::map<std::size_t, int64_t> running;   // run index -> epochs done
    const int64_t epochs = c.runs[0][0].train.epochs;
    auto redraw = [&] {
        if (quiet || !options.terminal) return;
        std::string line = "\r\033[K[" + std::to_string(done) + "/" + std::to_string(total) + " done]";
        for (const auto& [i, e] : running)
            line += "  " + c.variants[i / c.seeds.size()] + " seed " + std::to_string(c.seeds[i % c.seeds.size()]) +
                    " epoch " + std::to_string(e) + "/" + std::to_string(epochs);
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        double progress_runs = double(done - done_before);
        for (const auto& [i, e] : running) progress_runs += double(e) / double(epochs);
        if (progress_runs > 0)
            line += "  ETA " + human_seconds(elapsed / progress_runs * (double(total - done_before) - progress_runs));
        log << line << std::flush;
    };
    // A run has ended, here or (rank >= 0) in another process: its slot and its line.
    auto record = [&](std::size_t i, ComparisonRun run, int rank) {
        const std::lock_guard lock(progress);
        r.runs[i] = std::move(run);
        ++done;
        running.erase(i);
        if (quiet) return;
        const auto& h = r.runs[i].result.history;
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const std::string what = !r.runs[i].error.empty() ? "FAILED: " + r.runs[i].error
                                 : r.runs[i].result.diverged ? "DIVERGED at epoch " + std::to_string(h.back().epoch)
                                                             : metrics_line(h.back());
        const double per_run = elapsed / double(done - done_before);
        log << (options.terminal ? "\r\033[K" : "") << "[" << done << "/" << total << "] " << r.runs[i].variant
            << " seed " << r.runs[i].seed << (rank >= 0 ? " (rank " + std::to_string(rank) + ")" : "") << ": " << what
            << "  (" << human_seconds(elapsed) << ", ETA " << human_seconds(per_run * double(total - done)) << ")\n";
        redraw();
        log << std::flush;
    };
    auto train = [&](const RunQueue::Assignment& a) {
        const std::size_t i = a.index, v = i / c.seeds.size(), s = i % c.seeds.size();
        RunOptions one = options;
        one.out = run_dir(c, r.dir, i);
        one.resume.clear();
        // A run killed before its first checkpoint starts again in its own folder.
        one.overwrite = !a.cut;
        if (a.cut) std::swap(one.out, one.resume);
        one.quiet = true;
        one.arena = shared_arena;
        one.cluster = nullptr;   // a run is trained whole by one process
        one.on_epoch = [&, i](const EpochMetrics& m) {
            const std::lock_guard lock(progress);
            running[i] = m.epoch;
            redraw();
        };
        std::ostringstream quiet_log;
        ComparisonRun run{c.variants[v], c.seeds[s], {}, {}};
        try {
            run.result = run_experiment(c.runs[v][s], registry, one, quiet_log);
        } catch (const std::exception& e) {   // one failed run does not cost the others
            run.error = e.what();
            run.result.dir = run_dir(c, r.dir, i);
        }
        queue.finished(i, run.error);
        if (leads) record(i, std::move(run), cluster ? 0 : -1);
    };
    // This process's trainers: `jobs` runs at a time, each taken from the queue as one ends.
    auto work = [&] {
        if (jobs <= 1) {
            while (const auto a = queue.next()) train(*a);
            return;
        }
        // One arena for every run, as wide as train.threads and no wider than the
        // machine (oneTBB caps workers at the cores the trainers allow): `jobs` runs at a
        // time, each run's shards nested in it.
        const int threads = c.runs[0][0].train.threads > 0 ? int(c.runs[0][0].train.threads)
                                                            : tbb::info::default_concurrency();
        tbb::task_arena arena(std::min(threads, tbb::info::default_concurrency()));
        shared_arena = &arena;
        arena.execute([&] {
            tbb::task_group group;
            for (int j = 0; j < std::min(jobs, arena.max_concurrency()); ++j)
                group.run([&] {
                    // Isolated: a worker waiting inside one run's parallel_for must not
                    // pick up another whole run and stall the first behind it.
                    tbb::this_task_arena::isolate([&] {
                        while (const auto a = queue.next()) train(*a);
                    });
                });
            group.wait();
        });
    };
    if (!cluster) {
        work();
    } else if (leads) {
        // Rank 0's own trainers work beside the thread that serves the others.
        std::exception_ptr failure;
        std::thread trainers([&] {
            try {
                work();
            } catch (...) {
                failure = std::current_exception();
            }
        });
        auto remote_finished = [&](std::size_t i, int rank, const std::string& error) {
            ComparisonRun run{c.variants[i / c.seeds.size()], c.seeds[i % c.seeds.size()], {}, error};
            run.result.dir = run_dir(c, r.dir, i);
            // Its files, as that process wrote them: a file system that is not shared shows here.
            if (error.empty()) try {
                run.result = finished_result(run.result.dir);
            } catch (const std::exception& e) {
                run.error = "rank " + std::to_string(rank) + " trained it, but its summary cannot be read here: " +
                            e.what() + " (the comparison's folder must be on a file system every process shares)";
            }
            record(i, std::move(run), rank);
        };
        try {
            queue.serve(remote_finished);
        } catch (const std::exception& e) {
            // The other processes wait on this thread, and the trainers beside it may run
            // for long: end the job now, as any failure during training does.
            std::cerr << "backplane: error: " << e.what() << "\n";
            Cluster::abort(1);
        }
        trainers.join();
        if (failure) std::rethrow_exception(failure);
    } else {
        work();
        queue.leave();
        return r;   // rank 0 writes the table and the files
    }
    // Accuracy from the test set when the runs have one, else validation, else training.
    r.accuracy = Metric::train_accuracy;
    for (const auto& run : r.runs) {
        if (run.result.history.empty()) continue;
        const auto& last = run.result.history.back();
        if (std::isfinite(last.test.accuracy)) r.accuracy = Metric::test_accuracy;
        else if (std::isfinite(last.validation.accuracy) && r.accuracy == Metric::train_accuracy)
            r.accuracy = Metric::val_accuracy;
    }
    for (const auto& variant : c.variants) {
        std::vector<const ComparisonRun*> runs;
        for (const auto& run : r.runs)
            if (run.variant == variant) runs.push_back(&run);
        r.stats.push_back(statistics(variant, runs, c.target, r.accuracy));
    }
    compare_with_best(r);
    write_file_atomic(r.dir / "comparison.csv", comparison_csv(c, r));
    write_file_atomic(r.dir / "comparison.json", comparison_json(c, r));
    const fs::path report = write_comparison_report(c, r);
    if (!quiet)
        log << "\n" << comparison_table(c, r) << "\nresults in " << r.dir.string() << "\nreport: " << report.string()
            << "\n";
    return r;
}

}  // namespace bp
