#include "train/progress.hpp"

#include "text/format.hpp"

#include <cmath>
#include <cstdio>
#include <ostream>

namespace bp {

std::string metrics_line(const EpochMetrics& m) {
    std::string out;
    char buf[64];
    for (Metric metric : all_metrics) {
        if (std::isnan(m.get(metric))) continue;
        std::snprintf(buf, sizeof buf, "%s%s %.4f", out.empty() ? "" : "  ", to_string(metric), m.get(metric));
        out += buf;
    }
    return out;
}

ProgressPrinter::ProgressPrinter(std::ostream& out, bool in_place, int64_t epochs, bool bits)
    : out_(out), in_place_(in_place), epochs_(epochs), bits_(bits) {}

std::string ProgressPrinter::eta(double seconds_left) const { return "ETA " + human_seconds(seconds_left); }

void ProgressPrinter::step(const StepProgress& p) {
    if (!in_place_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(100) && p.samples_done < p.samples) return;
    last_draw_ = now;
    const double fraction = double(p.samples_done) / double(p.samples);
    // Time per epoch from the epochs done, else from this one so far.
    const double per_epoch = finished_ ? finished_seconds_ / double(finished_) : p.seconds / std::max(fraction, 1e-9);
    const double left = per_epoch * (double(epochs_ - p.epoch + 1) - fraction);
    char line[200];
    std::snprintf(line, sizeof line, "\repoch %lld/%lld %3.0f%%  train_loss %.4f  %s samples/s  %s\x1b[K",
                  static_cast<long long>(p.epoch), static_cast<long long>(epochs_), 100 * fraction, p.loss,
                  human_count(double(p.samples_done) / p.seconds).c_str(), eta(left).c_str());
    out_ << line << std::flush;
}

void ProgressPrinter::epoch(const EpochMetrics& m) {
    finished_seconds_ += m.seconds;
    ++finished_;
    std::string line = "epoch " + std::to_string(m.epoch) + "/" + std::to_string(epochs_) + "  " + metrics_line(m);
    if (bits_) {
        const bool val = !std::isnan(m.validation.loss);
        char buf[64];
        std::snprintf(buf, sizeof buf, "  (%s %.3f bits/byte)", val ? "val" : "train",
                      (val ? m.validation.loss : m.train.loss) / std::log(2.0));
        line += buf;
    }
    line += "  " + human_count(m.samples_per_second()) + " samples/s";
    if (m.diverged) line += "  DIVERGED";
    else if (m.epoch < epochs_) line += "  " + eta(finished_seconds_ / double(finished_) * double(epochs_ - m.epoch));
    out_ << (in_place_ ? "\r" : "") << line << (in_place_ ? "\x1b[K" : "") << "\n" << std::flush;
}

}  // namespace bp
