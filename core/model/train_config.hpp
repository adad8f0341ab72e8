// The experiment's `train:` section, defined once: the struct below holds the
// defaults, and train_settings() binds each member to its key, range and doc line,
// from which the schema, the reader and the writer are all made.
#pragma once

#include <backplane/params.hpp>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace bp {

struct TrainConfig {
    int64_t epochs = 10;
    int64_t batch_size = 32;
    int64_t shard_size = 32;   // rows per parallel work item; results depend on it, not on threads
    int64_t threads = 0;       // 0: all cores
    bool shuffle = true;
    int64_t checkpoint_every = 0;       // also keep checkpoints/epoch-N every N epochs (0: never)
    std::string best_metric = "auto";   // a metric name (metrics.hpp), or auto: val_loss, else train_loss
    int64_t patience = 0;               // stop after this many epochs without a better best_metric (0: never)
    int64_t diagnostics_every = 0;      // write a row of steps.csv every N steps (0: never)
};

// One key of `train:`: the member it sets, and what the schema says of it.
struct TrainSetting {
    std::string key;
    std::variant<int64_t TrainConfig::*, bool TrainConfig::*, std::string TrainConfig::*> member;
    int64_t min = 0, max = 0;              // integers
    std::vector<std::string> choices;      // strings
    std::string doc;
};
const std::vector<TrainSetting>& train_settings();

// The schema of `train:`, its defaults those of TrainConfig.
Schema train_schema();
// The members from schema-checked parameters, and back (every key, in schema order).
TrainConfig train_config(const Params& p);
Params train_params(const TrainConfig& t);

}  // namespace bp
