// Comparisons: every variant of an experiment's `compare:` block trained with every
// seed, each run exactly as it would be alone (its own folder, its own files), then
// one table, one row per variant, over the seeds.
#pragma once

#include "compare/batch.hpp"
#include "compare/statistics.hpp"
#include "model/comparison.hpp"
#include "train/run.hpp"

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

namespace bp {

// One variant over its seeds. Means and (sample) standard deviations leave out
// diverged and failed runs (the deviation is NaN below two runs); the "to target"
// figures cover the runs that reached it. best_accuracy is each run's best epoch by
// the same accuracy it reports: an optimistic (oracle) figure when that is the test set.
struct VariantStats {
    std::string variant;
    int runs = 0, diverged = 0, failed = 0, reached = 0;
    double final_accuracy = 0, final_accuracy_std = 0;
    Interval final_accuracy_ci{0, 0};   // 95% bootstrap interval of the mean (statistics.hpp)
    // The variant with the highest mean final accuracy, against this one over the seeds
    // both finished: how many, and the Wilcoxon signed-rank p-value, Holm-adjusted over
    // every variant compared with it (NaN for the best itself, or with no pair).
    std::string best;
    int pairs = 0;
    double p_vs_best = 0;
    // The reported accuracy at each run's epoch of highest validation accuracy: the
    // epoch a user would keep without looking at the test set (NaN without validation).
    double selected_accuracy = 0, selected_accuracy_std = 0;
    double best_accuracy = 0, best_accuracy_std = 0;
    double final_train_loss = 0, final_train_loss_std = 0;
    double epochs_to_target = 0, seconds_to_target = 0;
    double samples_per_second = 0;
};

struct ComparisonResult {
    std::filesystem::path dir;
    Metric accuracy = Metric::train_accuracy;   // the accuracy the table shows: test's, else validation's, else training's
    std::vector<ComparisonRun> runs;
    std::vector<VariantStats> stats;
    // Tuning: every trial, variant by variant as in Comparison::tuned, and the trial
    // each tuned variant chose (an index into its trials; -1 when none finished).
    std::vector<ComparisonRun> trials;
    std::vector<int> chosen;
};

// Tuning reads validation data: throws bp::Error, at compare.tuning's place, when the
// first tuned variant's data has none (its first trial prepared: the data loaded).
void check_tuning_data(const Comparison& c, const Registry& registry);

// The trial with the best final value of `metric` (a validation metric: tuning never
// reads the test set), the first of equals; -1 when none finished with a finite value.
int best_trial(const std::vector<ComparisonRun>& trials, Metric metric);

// Trains every run into <dir>/<variant>/seed-<seed>/ (dir: options.out, or
// runs/<name>/<timestamp>), printing a line as each ends, then writes
// comparison.csv, comparison.json, the charts and report.html (report.hpp) and
// prints the table. A tuned variant first trains its trials into
// <dir>/<variant>/trial-<k>/ (listed in trials.csv), then the seeds of its best.
// With jobs > 1, that many runs train at once in one oneTBB arena, each run's shards
// nested in it; every run's results are the same bits as when it runs alone.
// With options.cluster (several processes, MPI), every process trains `jobs` runs at a
// time, handed out by rank 0 (RunQueue), which alone prints and writes the
// comparison's files; the others return with no runs.
ComparisonResult run_comparison(const Comparison& c, const Registry& registry, const RunOptions& options, int jobs,
                                std::ostream& log);

// The first epoch (1-based) whose metric reaches the target, and the seconds spent up
// to its end; epoch 0 when none does.
std::pair<int64_t, double> time_to_target(const std::vector<EpochMetrics>& history, const CompareTarget& t);

// `accuracy` at the epoch of highest validation accuracy (the first such): the
// figure a user would report without looking at the test set. NaN without validation.
double at_best_validation(const std::vector<EpochMetrics>& history, Metric accuracy);

// The table: a header, one row per variant, cell by cell, and the notes below it.
struct ComparisonTable {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> notes;
};
ComparisonTable comparison_rows(const Comparison& c, const ComparisonResult& r);

// The table as printed: columns aligned, two spaces apart, then the notes.
std::string comparison_table(const Comparison& c, const ComparisonResult& r);

}  // namespace bp
