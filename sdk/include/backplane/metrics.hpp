// What an epoch measures, with one name per metric. The same names are the config
// keys' values (train.best_metric, compare.target.metric, reduce_on_plateau's
// metric), the columns of metrics.csv, the keys of summary.json and the labels of
// the reports: a metric is spelled one way everywhere.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bp {

enum class Metric { train_loss, train_accuracy, val_loss, val_accuracy, test_loss, test_accuracy };
inline constexpr Metric all_metrics[] = {Metric::train_loss, Metric::train_accuracy, Metric::val_loss,
                                         Metric::val_accuracy, Metric::test_loss,    Metric::test_accuracy};

inline const char* to_string(Metric m) {
    static const char* const names[] = {"train_loss", "train_accuracy", "val_loss",
                                        "val_accuracy", "test_loss", "test_accuracy"};
    return names[static_cast<int>(m)];
}

// Every metric's name, in the order above: the choices of a metric parameter.
inline std::vector<std::string> metric_names() {
    std::vector<std::string> out;
    for (Metric m : all_metrics) out.push_back(to_string(m));
    return out;
}

inline std::optional<Metric> metric_named(std::string_view name) {
    for (Metric m : all_metrics)
        if (name == to_string(m)) return m;
    return std::nullopt;
}

// Losses improve downwards, accuracies upwards.
inline bool lower_is_better(Metric m) {
    return m == Metric::train_loss || m == Metric::val_loss || m == Metric::test_loss;
}

// Mean loss and accuracy over a data set (accuracy NaN when the loss has none).
struct Evaluation {
    double loss = std::numeric_limits<double>::quiet_NaN();
    double accuracy = std::numeric_limits<double>::quiet_NaN();
};

// One finished epoch. NaN where the run has no such number: no validation split, no
// test set, no accuracy for a regression.
struct EpochMetrics {
    int64_t epoch = 0;                 // 1-based
    double learning_rate = std::numeric_limits<double>::quiet_NaN();   // the schedule's rate for this epoch
    Evaluation train;                  // averaged over the epoch's steps, as the weights moved
    Evaluation validation;             // after the epoch
    Evaluation test;                   // after the epoch
    double seconds = 0;                // the whole epoch, evaluations included
    double train_seconds = 0;          // the training steps alone
    int64_t samples = 0;               // training samples seen
    bool diverged = false;             // the loss became NaN or infinite

    double samples_per_second() const { return double(samples) / train_seconds; }
    double get(Metric m) const {
        switch (m) {
            case Metric::train_loss: return train.loss;
            case Metric::train_accuracy: return train.accuracy;
            case Metric::val_loss: return validation.loss;
            case Metric::val_accuracy: return validation.accuracy;
            case Metric::test_loss: return test.loss;
            case Metric::test_accuracy: return test.accuracy;
        }
        return std::numeric_limits<double>::quiet_NaN();
    }
};

}  // namespace bp
