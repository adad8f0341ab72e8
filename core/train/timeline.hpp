// Where a training step's time goes (`backplane run --profile`): per step, the wall
// time of each phase (the shards' forward and backward in parallel, the exchange
// between processes, the gradient reduction, the optimizer, the rest), each thread's
// busy time in the shards' phase (so idle time shows), and per model entry the
// forward and backward time summed over shards. Rows go into a buffer reserved before
// each epoch, so a profiled step allocates nothing either.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace bp {

using Clock = std::chrono::steady_clock;

inline double elapsed_ms(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
}

// What one shard did in a step, in milliseconds (on whichever threads ran it).
struct ShardTimes {
    double gather = 0, forward = 0, loss = 0, backward = 0;
};

// The phases of one step, as the moments that end them.
struct StepMarks {
    Clock::time_point start, shards, exchange, reduce, optimizer, end;
};

class StepTimeline {
public:
    // `threads`: the arena's slots; `nodes`: the model entries' labels, in order.
    StepTimeline(int threads, std::vector<std::string> nodes);

    void reserve(int64_t steps);
    int64_t steps() const { return int64_t(rows_.size() / columns()); }
    // One step of `samples` rows: its phases, what its shards did, and each arena slot's
    // milliseconds running them.
    void add(int64_t epoch, int64_t step, int64_t samples, const StepMarks& marks, std::span<const ShardTimes> shards,
             std::span<const double> busy);
    // Per model entry, milliseconds spent in forward and in backward (all shards).
    std::vector<double>& node_forward() { return node_forward_; }
    std::vector<double>& node_backward() { return node_backward_; }
    const std::vector<double>& node_forward() const { return node_forward_; }
    const std::vector<double>& node_backward() const { return node_backward_; }

    // timeline.csv: a row per step, milliseconds.
    std::string csv() const;
    // The averages a person reads: per phase us/step and share, thread busy and idle,
    // and the slowest model entries. The run's first step (first touches of every
    // buffer) is left out of the averages.
    std::string summary() const;

private:
    int threads_;
    std::vector<std::string> nodes_;
    std::vector<double> node_forward_, node_backward_;
    // Per step: epoch, step, samples, wall, shards, exchange, reduce, optimizer, other,
    // gather, forward, loss, backward, then each thread's busy time in the shards' phase.
    std::vector<double> rows_;
    std::size_t columns() const { return 13 + std::size_t(threads_); }
    std::vector<double> means() const;   // per column, over every row but the first
    std::string phase_table(const std::vector<double>& mean) const;
    std::string entry_table() const;
};

}  // namespace bp
