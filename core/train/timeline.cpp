#include "train/timeline.hpp"

#include "text/format.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace bp {

namespace {

enum Column : std::size_t {
    epoch, step, samples, wall, shards, exchange, reduce, optimizer, other, gather, forward, loss, backward
};

const char* const column_names[] = {"epoch",     "step",         "samples",  "wall_ms",   "shards_ms",
                                    "exchange_ms", "reduce_ms",  "optimizer_ms", "other_ms", "gather_ms",
                                    "forward_ms",  "loss_ms",    "backward_ms"};

std::string printed(const char* format, double a, double b = 0) {
    char line[160];
    std::snprintf(line, sizeof line, format, a, b);
    return line;
}

// `text` and spaces to `width` characters.
std::string padded(std::string text, std::size_t width) {
    if (text.size() < width) text.resize(width, ' ');
    return text;
}

}  // namespace

StepTimeline::StepTimeline(int threads, std::vector<std::string> nodes)
    : threads_(threads), nodes_(std::move(nodes)), node_forward_(nodes_.size(), 0.0), node_backward_(nodes_.size(), 0.0) {}

// Doubling: a long run's epochs do not copy every row again each time.
void StepTimeline::reserve(int64_t steps) {
    const std::size_t needed = rows_.size() + std::size_t(steps) * columns();
    if (needed > rows_.capacity()) rows_.reserve(std::max(needed, 2 * rows_.capacity()));
}

void StepTimeline::add(int64_t epoch_number, int64_t step_number, int64_t rows, const StepMarks& m,
                       std::span<const ShardTimes> done, std::span<const double> busy) {
    double work[4] = {0, 0, 0, 0};
    const std::size_t at = rows_.size();
    rows_.resize(at + columns(), 0.0);   // within the reserved room
    double* row = rows_.data() + at;
    for (const ShardTimes& s : done) work[0] += s.gather, work[1] += s.forward, work[2] += s.loss, work[3] += s.backward;
    std::copy_n(busy.begin(), std::min(busy.size(), std::size_t(threads_)), row + columns() - std::size_t(threads_));
    row[epoch] = double(epoch_number);
    row[step] = double(step_number);
    row[samples] = double(rows);
    row[wall] = elapsed_ms(m.start, m.end);
    row[shards] = elapsed_ms(m.start, m.shards);
    row[exchange] = elapsed_ms(m.shards, m.exchange);
    row[reduce] = elapsed_ms(m.exchange, m.reduce);
    row[optimizer] = elapsed_ms(m.reduce, m.optimizer);
    row[other] = elapsed_ms(m.optimizer, m.end);
    std::copy(work, work + 4, row + gather);
}

std::string StepTimeline::csv() const {
    std::string out;
    for (const char* name : column_names) out += std::string(out.empty() ? "" : ",") + name;
    for (int t = 0; t < threads_; ++t) out += ",busy_ms:thread" + std::to_string(t);
    out += "\n";
    for (std::size_t at = 0; at < rows_.size(); at += columns()) {
        for (std::size_t c : {epoch, step, samples})
            out += (c == epoch ? "" : ",") + std::to_string(int64_t(rows_[at + c]));
        for (std::size_t c = wall; c < columns(); ++c) out += "," + csv_number(rows_[at + c]);
        out += "\n";
    }
    return out;
}

std::vector<double> StepTimeline::means() const {
    const std::size_t rows = rows_.size() / columns();
    std::vector<double> mean(columns(), 0.0);
    for (std::size_t r = 1; r < rows; ++r)
        for (std::size_t c = 0; c < columns(); ++c) mean[c] += rows_[r * columns() + c] / double(rows - 1);
    return mean;
}

std::string StepTimeline::phase_table(const std::vector<double>& mean) const {
    std::string out = "phase                     us/step   share\n";
    auto line = [&](const char* name, double ms, const std::string& note) {
        out += "  " + padded(name, 22) + printed(" %8.1f  %5.1f%%", 1000 * ms, 100.0 * ms / mean[wall]) + note + "\n";
    };
    double busy = 0;
    std::string per_thread;
    for (int t = 0; t < threads_; ++t) {
        const double b = mean[columns() - std::size_t(threads_) + std::size_t(t)];
        busy += b;
        per_thread += printed(" %.1f", 1000 * b);
    }
    const double idle = mean[shards] * threads_ - busy;
    line("shards (parallel)", mean[shards],
         "   busy per thread" + per_thread +
             printed(" us; idle %.1f thread-us (%.1f%%)", 1000 * idle, 100.0 * idle / (mean[shards] * threads_)));
    const char* parts[] = {"gather", "forward", "loss", "backward"};
    for (std::size_t p = 0; p < 4; ++p)
        out += "      " + padded(parts[p], 18) + printed(" %8.1f thread-us\n", 1000 * mean[gather + p]);
    line("exchange (processes)", mean[exchange], "   over several processes, with the reduction");
    line("reduce", mean[reduce], "");
    line("optimizer", mean[optimizer], "   with train.diagnostics_every, the gradients' norms too");
    line("other", mean[other], "   the nodes' end of step, progress, diagnostics' norms");
    return out;
}

// The entries that take longest, forward plus backward, first.
std::string StepTimeline::entry_table() const {
    std::vector<std::size_t> order(nodes_.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return node_forward_[a] + node_backward_[a] > node_forward_[b] + node_backward_[b];
    });
    std::string out = "model entry               forward  backward   thread-us/step, this process's shards\n";
    const double per_step = 1000.0 / double(steps() - 1);   // ms summed over the steps -> us a step
    for (std::size_t i : order)
        out += "  " + padded(nodes_[i], 22) + printed(" %8.1f  %8.1f\n", per_step * node_forward_[i],
                                                      per_step * node_backward_[i]);
    return out;
}

std::string StepTimeline::summary() const {
    if (steps() < 2) return "profile: fewer than two steps, nothing to average\n";
    const std::vector<double> mean = means();
    // samples/s over the steps timed: the last step of an epoch may be short.
    const double per_second = mean[samples] * 1000.0 / mean[wall];
    return "profile of " + std::to_string(steps() - 1) + " steps (the run's first left out), " +
           std::to_string(threads_) + " thread(s): " + printed("%.1f us a step, ", 1000 * mean[wall]) +
           human_count(per_second) + " samples/s in training steps\n" + phase_table(mean) + entry_table();
}

}  // namespace bp
