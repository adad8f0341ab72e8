// A comparison: the experiment file's `compare:` block, every variant trained with
// every seed. Each run is a complete experiment, read like one, so every error still
// names its place in the file (and the variant it came through).
#pragma once

#include "model/experiment.hpp"
#include "model/search.hpp"

#include <backplane/metrics.hpp>

#include <functional>
#include <optional>

namespace bp {

struct CompareTarget {
    Metric metric = Metric::test_accuracy;   // losses are reached from above, accuracies from below
    double value = 0;
};

// A variant with `{sweep: log|linear, from, to, points}` in place of a value becomes
// one variant per value, named variant@value.
struct CompareSweep {
    std::string variant;                 // the variant as written
    std::string key;                     // the swept key, e.g. optimizer.lr
    std::vector<double> values;
    std::vector<std::size_t> variants;   // index in Comparison::variants of each value's variant
    bool log = false;
};

// compare.tuning: how the variants that declare a search space are tuned.
struct Tuning {
    int64_t trials = 0;
    SearchMethod method = SearchMethod::quasi_random;
    uint64_t seed = 0;                    // the draws' stream, and every trial's training seed
    Metric metric = Metric::val_accuracy; // read from validation, never from test
    int64_t budget = 0;                   // epochs each trial trains
    std::string where;                    // the block's place, for messages
};

// One drawn point of a variant's space: the trial run, and the run of every seed the
// variant reruns with should this trial be its best.
struct Trial {
    std::vector<std::string> values;   // one per dimension of the space, as YAML text
    Experiment run;
    std::vector<Experiment> seeds;
};

struct TunedVariant {
    std::size_t variant;               // index in Comparison::variants
    std::vector<SearchDimension> space;
    std::vector<Trial> trials;
};

struct Comparison {
    std::string name;                    // the experiment's
    std::vector<std::string> variants;
    std::vector<CompareSweep> sweeps;
    std::vector<uint64_t> seeds;
    std::optional<CompareTarget> target;
    // runs[v][s]: variant v with seeds[s]. Empty for a tuned variant: its runs are its
    // best trial's seeds, known once the trials have run.
    std::vector<std::vector<Experiment>> runs;
    std::optional<Tuning> tuning;
    std::vector<TunedVariant> tuned;

    // Every experiment the comparison may train: seed runs, trials and each trial's seeds.
    std::vector<const Experiment*> every_run() const;
};

// Reads an experiment file that may hold a `compare:` block; nullopt without one
// (read it with load_experiment). Each variant's keys are merged into the experiment
// (maps key by key; a component whose `name` changes is replaced whole).
std::optional<Comparison> load_comparison(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                                          Registry& registry);
// `hook`, when given, changes each document after its overrides, before it is read
// (a suite puts its compare block into a workload's experiment).
using DocumentHook = std::function<void(YamlReader&, YAML::Node& root)>;
std::optional<Comparison> parse_comparison(const std::string& text, const std::filesystem::path& file,
                                           const std::vector<std::string>& overrides, Registry& registry,
                                           const DocumentHook& hook = {});

}  // namespace bp
