// The progress line: redrawn in place on a terminal, one plain line per epoch otherwise.
#pragma once

#include "train/trainer.hpp"

#include <chrono>
#include <iosfwd>

namespace bp {

// "train_loss 0.0223  train_accuracy 0.9967  val_loss 0.0412  val_accuracy 0.9950": the
// metrics an epoch has, by their names (metrics.hpp).
std::string metrics_line(const EpochMetrics& m);

class ProgressPrinter {
public:
    // `in_place`: the stream is a terminal, so lines can be redrawn with '\r'.
    // `bits`: the loss is a cross entropy per byte in nats (a language model on bytes):
    // the line adds it in bits per byte, the unit character models are compared in.
    ProgressPrinter(std::ostream& out, bool in_place, int64_t epochs, bool bits = false);

    // During an epoch (terminal only, at most 10 times a second).
    void step(const StepProgress& p);
    // The epoch's final line.
    void epoch(const EpochMetrics& m);

private:
    std::string eta(double seconds_left) const;
    std::ostream& out_;
    bool in_place_;
    int64_t epochs_;
    bool bits_;
    double finished_seconds_ = 0;   // wall time of the epochs this process ran
    int64_t finished_ = 0;          // how many (a resumed run starts later than epoch 1)
    std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace bp
