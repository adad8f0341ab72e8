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
    if (!std::isfinite(r.stats[best].final_accuracy)) {   // no variant finished a run: no best
        for (auto& s : r.stats) s.best.clear(), s.p_vs_best = std::nan("");
        return;
    }
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
        for (std::size_t k = 0; k < std::min(finals.size(), best_finals.size()); ++k)
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

// Each trial's hyperparameters as "key=value" words.
std::string trial_values(const TunedVariant& tv, const Trial& t) {
    std::string out;
    for (std::size_t d = 0; d < tv.space.size(); ++d) out += (d ? " " : "") + tv.space[d].key + "=" + t.values[d];
    return out;
}

// The final value of the tuning metric, NaN where the trial diverged or failed.
double trial_score(const ComparisonRun& run, Metric metric) {
    const auto& h = run.result.history;
    return run.error.empty() && !run.result.diverged && !h.empty() ? h.back().get(metric) : std::nan("");
}

std::string trials_csv(const Comparison& c, const ComparisonResult& r) {
    const std::string metric = to_string(c.tuning->metric);
    std::string out = "variant,trial,status,final_" + metric + ",chosen,hyperparameters,dir\n";
    std::size_t at = 0;
    for (std::size_t k = 0; k < c.tuned.size(); ++k) {
        const TunedVariant& tv = c.tuned[k];
        for (std::size_t t = 0; t < tv.trials.size(); ++t, ++at) {
            const ComparisonRun& run = r.trials[at];
            out += run.variant + "," + std::to_string(t + 1) + "," + status(run) + "," +
                   csv_number(trial_score(run, c.tuning->metric)) + "," + (r.chosen[k] == int(t) ? "yes" : "") + "," +
                   trial_values(tv, tv.trials[t]) + "," + fs::relative(run.result.dir, r.dir).string() + "\n";
        }
    }
    return out;
}

nlohmann::json tuning_json(const Comparison& c, const ComparisonResult& r) {
    const Tuning& t = *c.tuning;
    const char* methods[] = {"quasi_random", "random", "grid"};
    nlohmann::json j = {{"trials", t.trials}, {"method", methods[int(t.method)]}, {"seed", t.seed},
                        {"metric", to_string(t.metric)}};
    std::size_t at = 0;
    for (std::size_t k = 0; k < c.tuned.size(); ++k) {
        const TunedVariant& tv = c.tuned[k];
        // A grid may draw fewer than `trials`; a variant may set its own train.epochs.
        nlohmann::json v = {{"variant", c.variants[tv.variant]},
                             {"drawn", tv.trials.size()},
                             {"budget_epochs", tv.trials[0].run.train.epochs},
                             {"chosen_trial", r.chosen[k] < 0 ? nlohmann::json() : nlohmann::json(r.chosen[k] + 1)}};
        for (const auto& d : tv.space) v["keys"].push_back(d.key);
        for (std::size_t i = 0; i < tv.trials.size(); ++i, ++at) {
            const ComparisonRun& run = r.trials[at];
            nlohmann::json values;
            for (std::size_t d = 0; d < tv.space.size(); ++d) values[tv.space[d].key] = tv.trials[i].values[d];
            v["trials"].push_back({{"trial", i + 1},
                                   {"values", values},
                                   {"status", status(run)},
                                   {"error", run.error},
                                   {"final_" + std::string(to_string(t.metric)), json_number(trial_score(run, t.metric))},
                                   {"dir", fs::relative(run.result.dir, r.dir).string()}});
        }
        j["variants"].push_back(v);
    }
    return j;
}

std::string comparison_json(const Comparison& c, const ComparisonResult& r) {
    nlohmann::json j;
    j["name"] = c.name;
    j["seeds"] = c.seeds;
    j["accuracy"] = to_string(r.accuracy);
    if (c.target) j["target"] = {{"metric", to_string(c.target->metric)}, {"value", c.target->value}};
    if (c.tuning) j["tuning"] = tuning_json(c, r);
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
            note += "; with " + std::to_string(most_pairs) + (most_pairs == 1 ? " seed" : " seeds") + " no p can be below " +
                    shortest_double(std::ldexp(1.0, 1 - most_pairs)) + " (6 or more seeds can reach 0.05)";
        t.notes.push_back(note);
    }
    for (std::size_t k = 0; k < c.tuned.size(); ++k) {
        const TunedVariant& tv = c.tuned[k];
        const std::string& name = c.variants[tv.variant];
        if (r.chosen[k] < 0) {
            t.notes.push_back(name + ": no trial finished (see trials.csv), so it has no runs");
            continue;
        }
        const Trial& best = tv.trials[std::size_t(r.chosen[k])];
        std::size_t at = 0;
        for (std::size_t j = 0; j < k; ++j) at += c.tuned[j].trials.size();
        t.notes.push_back(name + ": trial " + std::to_string(r.chosen[k] + 1) + " of " + std::to_string(tv.trials.size()) +
                          " (final " + to_string(c.tuning->metric) + " " +
                          csv_number(trial_score(r.trials[at + std::size_t(r.chosen[k])], c.tuning->metric)) +
                          "): " + trial_values(tv, best));
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

// The comparison's folder: a new one, the --out given (refused when it holds
// results, unless they are to be replaced), or the one --resume continues.
fs::path comparison_dir(const Comparison& c, const RunOptions& options) {
    if (!options.resume.empty()) {
        if (!fs::is_directory(options.resume))
            throw Error("--resume " + options.resume.string() + ": no such comparison folder");
        if (fs::exists(options.resume / "summary.json") || fs::exists(options.resume / "checkpoints"))
            throw Error("--resume " + options.resume.string() + " is a single run's folder, not a comparison's; "
                        "resume it with the experiment that made it");
        if (fs::exists(options.resume / "suite.json") || fs::exists(options.resume / "profile.svg"))
            throw Error("--resume " + options.resume.string() + " is a suite's folder, not a comparison's; "
                        "resume it with the suite file that made it");
        remove_temporaries(options.resume);
        return options.resume;
    }
    if (options.out.empty()) return new_run_dir(options.runs_root, c.name);
    claim_out_dir(options.out, "comparison", options.overwrite);
    return options.out;
}

std::string trial_title(const Comparison& c) {
    const Tuning& t = *c.tuning;
    std::size_t trials = 0;
    for (const auto& tv : c.tuned) trials += tv.trials.size();
    return "tuning " + std::to_string(c.tuned.size()) + " variant(s): " + std::to_string(trials) + " trials (seed " +
           std::to_string(t.seed) + "), each variant's best by final " + to_string(t.metric);
}

// Each tuned variant's best trial (index into its trials; -1 when none finished).
std::vector<int> choose_trials(const Comparison& c, const std::vector<ComparisonRun>& trials) {
    std::vector<int> chosen;
    std::size_t at = 0;
    bool any_validation = false;
    for (const auto& tv : c.tuned) {
        const std::vector<ComparisonRun> mine(trials.begin() + std::ptrdiff_t(at),
                                              trials.begin() + std::ptrdiff_t(at + tv.trials.size()));
        at += tv.trials.size();
        chosen.push_back(best_trial(mine, c.tuning->metric));
        for (const auto& t : mine)
            any_validation |= !t.result.history.empty() && std::isfinite(t.result.history.back().get(c.tuning->metric));
    }
    bool any_finished = false;
    for (const auto& t : trials) any_finished |= t.error.empty() && !t.result.diverged && !t.result.history.empty();
    if (any_finished && !any_validation)
        throw Error("compare.tuning chooses trials by " + std::string(to_string(c.tuning->metric)) +
                    ", but the trials have no validation data; hold some out with data.validation_split (e.g. 0.1)");
    return chosen;
}

std::string join_ints(const std::vector<int>& v) {
    std::string out;
    for (int x : v) out += (out.empty() ? "" : ",") + std::to_string(x);
    return out;
}

std::vector<int> split_ints(const std::string& s) {
    std::vector<int> out;
    std::istringstream in(s);
    for (std::string part; std::getline(in, part, ',');) out.push_back(std::stoi(part));
    return out;
}

}  // namespace

void check_tuning_data(const Comparison& c, const Registry& registry) {
    if (c.tuned.empty()) return;
    const PreparedRun p = prepare_run(c.tuned[0].trials[0].run, registry);
    if (p.validation.x.rows() == 0)
        throw Error(c.tuning->where + ": compare.tuning chooses trials by " + to_string(c.tuning->metric) +
                    ", but variant '" + c.variants[c.tuned[0].variant] + "' has no validation data; hold some out "
                    "with data.validation_split (e.g. 0.1)");
}

int best_trial(const std::vector<ComparisonRun>& trials, Metric metric) {
    const bool lower = lower_is_better(metric);
    int best = -1;
    double best_value = 0;
    for (std::size_t t = 0; t < trials.size(); ++t) {
        const auto& h = trials[t].result.history;
        if (!trials[t].error.empty() || trials[t].result.diverged || h.empty()) continue;
        const double v = h.back().get(metric);
        if (!std::isfinite(v)) continue;
        if (best < 0 || (lower ? v < best_value : v > best_value)) best = int(t), best_value = v;
    }
    return best;
}

ComparisonResult run_comparison(const Comparison& c, const Registry& registry, const RunOptions& options, int jobs,
                                std::ostream& log) {
    ComparisonResult r;
    // Over several processes, rank 0 leads: it keeps the results, writes every file
    // but the runs' own, and prints.
    Cluster* cluster = options.cluster;
    const bool leads = !cluster || cluster->rank() == 0;
    auto prepare = [&] {
        if (cluster) {
            std::vector<Experiment> all;
            for (const Experiment* e : c.every_run()) all.push_back(*e);
            check_same_experiments(*cluster, all);
        }
        if (!leads) return;
        check_tuning_data(c, registry);
        r.dir = comparison_dir(c, options);
    };
    if (cluster) {
        cluster->agree(prepare);
        r.dir = cluster->broadcast(r.dir.string());
    } else {
        prepare();
    }
    const std::string where = " in " + r.dir.string();

    // The trials first, when variants are tuned; then each variant's seeds (a tuned
    // variant's: those of its best trial, as rank 0 chose it).
    if (!c.tuned.empty()) {
        std::vector<PlannedRun> trials;
        for (const auto& tv : c.tuned)
            for (std::size_t t = 0; t < tv.trials.size(); ++t)
                trials.push_back({&tv.trials[t].run, r.dir / c.variants[tv.variant] / ("trial-" + std::to_string(t + 1)),
                                  c.variants[tv.variant], c.tuning->seed, int(t + 1)});
        r.trials = train_batch(trials, trial_title(c) + where, registry, options, jobs, log);
        auto choose = [&] {
            if (leads) r.chosen = choose_trials(c, r.trials);
        };
        if (cluster) {
            cluster->agree(choose);
            r.chosen = split_ints(cluster->broadcast(join_ints(r.chosen)));
        } else {
            choose();
        }
    }
    std::vector<PlannedRun> seeds;
    for (std::size_t v = 0; v < c.variants.size(); ++v) {
        const std::vector<Experiment>* runs = &c.runs[v];
        for (std::size_t k = 0; k < c.tuned.size(); ++k)
            if (c.tuned[k].variant == v) runs = r.chosen[k] >= 0 ? &c.tuned[k].trials[std::size_t(r.chosen[k])].seeds : nullptr;
        if (!runs) continue;   // no trial of this tuned variant finished
        for (std::size_t s = 0; s < runs->size(); ++s)
            seeds.push_back({&(*runs)[s], r.dir / c.variants[v] / ("seed-" + std::to_string(c.seeds[s])), c.variants[v],
                             c.seeds[s], 0});
    }
    const std::string title = "comparing " + std::to_string(c.variants.size()) + " variants x " +
                              std::to_string(c.seeds.size()) + " seeds" + (c.tuned.empty() ? "" : " (tuned: best trials)");
    r.runs = train_batch(seeds, title + where, registry, options, jobs, log);
    if (!leads) return r;   // rank 0 writes the table and the files

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
    if (!c.tuned.empty()) write_file_atomic(r.dir / "trials.csv", trials_csv(c, r));
    write_file_atomic(r.dir / "comparison.json", comparison_json(c, r));
    const fs::path report = write_comparison_report(c, r);
    const bool quiet = options.quiet;
    if (!quiet)
        log << "\n" << comparison_table(c, r) << "\nresults in " << r.dir.string() << "\nreport: " << report.string()
            << "\n";
    return r;
}

}  // namespace bp
