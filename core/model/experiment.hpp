// An experiment file, read and checked against the registry's schemas: every key
// known, every value typed and in range, every component found, defaults filled.
#pragma once

#include "model/augment.hpp"
#include "model/graph.hpp"
#include "model/registry.hpp"
#include "model/train_config.hpp"
#include "model/yaml_reader.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace bp {

// `init_from:`: start some model entries from another run's weights (fine-tuning).
struct InitFrom {
    std::filesystem::path checkpoint;   // absolute: a checkpoint file, or a run folder (its last checkpoint)
    std::vector<std::string> nodes;     // entry names (a block's use: all its layers); empty: every entry
    std::string where;                  // its place, for messages
};

struct Experiment {
    std::filesystem::path file;     // the YAML file; relative paths in it start at its folder
    std::string name;
    uint64_t seed = 0;
    ComponentConfig data;           // kind dataset
    double validation_split = 0;    // fraction of the training set held out
    AugmentConfig augment;          // data.augment
    std::string augment_where;      // its place, for messages
    std::vector<ModelNode> model;   // layers and activations, in the file's order
    ComponentConfig loss, optimizer;
    ComponentConfig schedule;       // the optimizer's `schedule:`; default constant
    int64_t warmup = 0;             // schedule.warmup: epochs (steps, per_step) of linear warmup before the schedule
    bool per_step = false;          // schedule.per_step: the schedule and its warmup count steps, not epochs
    TrainConfig train;
    std::string best_metric_where;  // train.best_metric's place (the data may hold its own validation split)
    std::vector<std::filesystem::path> plugins;   // absolute
    std::optional<InitFrom> init_from;
};

// Reads `file`, applies `--set key.path=value` overrides, loads the experiment's
// `plugins:` into the registry, and validates everything. Throws bp::Error whose
// message starts with file:line:column (or the --set at fault).
Experiment load_experiment(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                           Registry& registry);

// The same from text; `file` only names it in messages and anchors relative paths.
Experiment parse_experiment(const std::string& text, const std::filesystem::path& file,
                            const std::vector<std::string>& overrides, Registry& registry);

// An experiment from its parsed document (overrides applied): what the two above
// and each run of a comparison do.
Experiment read_experiment(YamlReader& reader, const YAML::Node& root);

// Why `name` cannot name a folder (empty when it can): an experiment's name names its
// runs' folder, a comparison variant's name its runs' folder in the comparison.
std::string folder_name_problem(const std::string& name);

// The experiment file's text; throws bp::Error naming it when it cannot be read.
std::string read_experiment_file(const std::filesystem::path& file);

// The resolved experiment as YAML (defaults filled): runs again as it is.
std::string to_yaml(const Experiment& e);

// What differs between two experiments as to_yaml writes them, one line per key:
// "optimizer.lr: 0.1 -> 0.2". Empty when they are the same.
std::vector<std::string> experiment_changes(const std::string& before_yaml, const std::string& after_yaml);

}  // namespace bp
