// How a step's shards share the threads, in training and in evaluation. A shard's step is a
// chain of units (its rows gathered, each node's forward, the loss, in training each node's
// backward) that run in order, but any thread may run the next one: a unit reads and writes
// only its shard's buffers, so the bits are the same whoever runs it. A worker keeps its
// shard while no free shard lags it by more than kSlack units, and otherwise moves to the
// one furthest behind. So shards move every kSlack + 1 units or so even when the threads
// are equally fast, the free shards advance together, and a thread on a faster or less
// loaded core takes a larger part of the step instead of waiting for the other at its end
// (docs/performance.md, "Shards that move between threads"). A move costs reading the
// shard's buffers from the other core's cache; kSlack bounds how often that happens. A
// shard held by a slower thread is not taken from it: when that one lags, the other thread
// runs the rest, and in the end waits while the slower thread finishes its shard (never
// more than its share under a fixed split, one shard of the step's several).
#pragma once

#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <vector>

namespace bp {

class ShardSchedule {
public:
    static constexpr int kSlack = 8;

    // Room for shards 0..shards-1, made before the steps: a step allocates nothing.
    void resize(std::size_t shards) { next_.resize(shards), held_.resize(shards); }

    // run(shard, unit) for units 0..units-1 of every shard in [first, last), each shard's
    // in order, from up to `threads` workers in the calling arena. With no more shards
    // than threads (or one thread) nothing can move: each shard runs whole.
    template <class Run>
    void run(std::size_t first, std::size_t last, int units, int threads, Run&& run) {
        threads = std::min(threads, tbb::this_task_arena::max_concurrency());   // a shared arena may be narrower
        if (threads <= 1 || last - first <= std::size_t(threads)) {
            tbb::parallel_for(first, last, [&](std::size_t s) {
                for (int u = 0; u < units; ++u) run(s, u);
            }, tbb::static_partitioner());
            return;
        }
        for (std::size_t s = first; s < last; ++s) next_[s] = 0, held_[s] = false;
        tbb::parallel_for(0, threads, [&](int) {
            for (std::size_t s = none; (s = take(s, first, last, units)) != none;) run(s, next_[s]);
        }, tbb::static_partitioner());
    }

private:
    static constexpr std::size_t none = ~std::size_t(0);

    // After `current` ran its next unit (none at a worker's start): the shard to run a
    // unit of now, held for this worker; none when every unfinished one is held.
    std::size_t take(std::size_t current, std::size_t first, std::size_t last, int units);

    std::mutex mutex_;
    std::vector<int> next_;     // per shard: its next unit (written by its holder under mutex_)
    std::vector<char> held_;    // per shard: a worker runs it
};

}  // namespace bp
