// An experiment file, read and checked against the registry's schemas: every key
// known, every value typed and in range, every component found, defaults filled.
#pragma once

#include "model/registry.hpp"

#include <backplane/params.hpp>
#include <backplane/plugin.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace bp {

struct ComponentConfig {
    Kind kind = Kind::layer;
    std::string name;     // registry name
    Params params;        // validated, every schema entry present
    std::string where;    // "file.yaml:12:5", for messages about this component
};

struct TrainConfig {
    int64_t epochs = 10;
    int64_t batch_size = 32;
    int64_t shard_size = 32;   // rows per parallel work item; results depend on it, not on threads
    int64_t threads = 0;       // 0: all cores
    bool shuffle = true;
    int64_t checkpoint_every = 0;       // also keep checkpoints/epoch-N every N epochs (0: never)
    std::string best_metric = "auto";   // what checkpoints/best is best by; auto: val_loss, else train_loss
    int64_t patience = 0;               // stop after this many epochs without a better best_metric (0: never)
};

struct Experiment {
    std::filesystem::path file;     // the YAML file; relative paths in it start at its folder
    std::string name;
    uint64_t seed = 0;
    ComponentConfig data;           // kind dataset
    double validation_split = 0;    // fraction of the training set held out
    std::vector<ComponentConfig> model;   // layers and activations, in order
    ComponentConfig loss, optimizer;
    ComponentConfig schedule;       // the optimizer's `schedule:`; default constant
    int64_t warmup = 0;             // schedule.warmup: epochs of linear warmup before the schedule
    TrainConfig train;
    std::vector<std::filesystem::path> plugins;   // absolute
};

// A comparison (the experiment file's `compare:` block): every variant trained with
// every seed. runs[v][s] is variant v with seeds[s], a complete experiment.
struct CompareTarget {
    std::string metric;   // e.g. test_accuracy; losses are reached from above, accuracies from below
    double value = 0;
};
// A variant with `{sweep: log|linear, from, to, points}` in place of a value becomes
// one variant per value, named variant@value.
struct CompareSweep {
    std::string variant;             // the variant as written
    std::string key;                 // the swept key, e.g. optimizer.lr
    std::vector<double> values;
    std::vector<std::size_t> variants;   // index in Comparison::variants of each value's variant
    bool log = false;
};
struct Comparison {
    std::string name;                        // the experiment's
    std::vector<std::string> variants;
    std::vector<CompareSweep> sweeps;
    std::vector<uint64_t> seeds;
    std::optional<CompareTarget> target;
    std::vector<std::vector<Experiment>> runs;
};

// Reads an experiment file that may hold a `compare:` block; without one the result
// is nullopt (read it with load_experiment). Each variant's keys are merged into the
// experiment (maps key by key; a component whose `name` changes is replaced whole).
std::optional<Comparison> load_comparison(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                                          Registry& registry);
std::optional<Comparison> parse_comparison(const std::string& text, const std::filesystem::path& file,
                                           const std::vector<std::string>& overrides, Registry& registry);

// Reads `file`, applies `--set key.path=value` overrides, loads the experiment's
// `plugins:` into the registry, and validates everything. Throws bp::Error whose
// message starts with file:line:column.
Experiment load_experiment(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                           Registry& registry);

// The same from text; `file` only names it in messages and anchors relative paths.
Experiment parse_experiment(const std::string& text, const std::filesystem::path& file,
                            const std::vector<std::string>& overrides, Registry& registry);

// The resolved experiment as YAML (defaults filled): runs again as it is.
std::string to_yaml(const Experiment& e);

}  // namespace bp
