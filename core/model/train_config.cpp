#include "model/train_config.hpp"

#include <backplane/metrics.hpp>

namespace bp {

const std::vector<TrainSetting>& train_settings() {
    static const std::vector<TrainSetting> settings = [] {
        std::vector<std::string> metrics = {"auto"};
        for (const auto& name : metric_names()) metrics.push_back(name);
        return std::vector<TrainSetting>{
            {"epochs", &TrainConfig::epochs, 1, 1000000, {}, "passes over the training set"},
            {"batch_size", &TrainConfig::batch_size, 1, 1 << 20, {}, "samples per optimizer step"},
            {"shard_size", &TrainConfig::shard_size, 1, 1 << 16, {},
             "rows per parallel work item; results depend on it, never on the thread count"},
            {"threads", &TrainConfig::threads, 0, 1024, {}, "worker threads; 0 or auto: all cores"},
            {"shuffle", &TrainConfig::shuffle, 0, 0, {}, "reshuffle the training set every epoch"},
            {"checkpoint_every", &TrainConfig::checkpoint_every, 0, 1000000, {},
             "also keep checkpoints/epoch-N.safetensors every N epochs (0: never)"},
            {"best_metric", &TrainConfig::best_metric, 0, 0, metrics,
             "the metric checkpoints/best.safetensors is best by; auto: val_loss with a validation split, else "
             "train_loss"},
            {"patience", &TrainConfig::patience, 0, 1000000, {},
             "stop early after this many epochs without a better best_metric (0: never)"},
            {"diagnostics_every", &TrainConfig::diagnostics_every, 0, 1000000000, {},
             "every N steps, a row of steps.csv: loss, learning rate, gradient, update and weight norms, overall "
             "and per model entry (0: never)"},
        };
    }();
    return settings;
}

Schema train_schema() {
    const TrainConfig defaults;
    Schema s;
    for (const auto& t : train_settings()) {
        if (auto* i = std::get_if<int64_t TrainConfig::*>(&t.member)) s.integer(t.key, defaults.*(*i), t.min, t.max, t.doc);
        else if (auto* b = std::get_if<bool TrainConfig::*>(&t.member)) s.boolean(t.key, defaults.*(*b), t.doc);
        else s.choice(t.key, defaults.*std::get<std::string TrainConfig::*>(t.member), t.choices, t.doc);
    }
    return s;
}

TrainConfig train_config(const Params& p) {
    TrainConfig c;
    for (const auto& t : train_settings()) {
        if (auto* i = std::get_if<int64_t TrainConfig::*>(&t.member)) c.*(*i) = p.integer(t.key);
        else if (auto* b = std::get_if<bool TrainConfig::*>(&t.member)) c.*(*b) = p.boolean(t.key);
        else c.*std::get<std::string TrainConfig::*>(t.member) = p.text(t.key);
    }
    return c;
}

Params train_params(const TrainConfig& c) {
    Params p;
    for (const auto& t : train_settings())
        std::visit([&](auto member) { p.set(t.key, c.*member); }, t.member);
    return p;
}

}  // namespace bp
