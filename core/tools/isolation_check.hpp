// A layer keeps nothing of a shard in itself: everything a shard's backward needs
// lives in that shard's Workspace. The trainer relies on it to run shards at once;
// a layer that caches its input in a member computes right in a sequential test and
// wrong when shards interleave or run on several threads.
#pragma once

#include <backplane/components.hpp>

#include <string>

namespace bp {

// Runs `layer` (built for `inputs`) on three shards of seeded data: each alone,
// forward then backward (the reference); all forwards, then all backwards, on one
// thread; and on three threads at once, forwards then backwards, many times; in
// training, also that end_step reads nothing of a workspace but its step_statistics()
// (a shard another process ran brings only that). Returns
// "" when every shard's outputs and gradients are the reference's bits, else what
// differed and where. `indices` > 0: the first input holds token ids (CheckCase::indices).
std::string isolation_problem(Layer& layer, const std::vector<Shape>& inputs, uint64_t seed, bool training,
                              int64_t indices = 0);

}  // namespace bp
