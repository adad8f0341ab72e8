// Data-parallel training on oneTBB, bitwise deterministic at any thread count.
//
// A batch is cut into fixed-size shards (train.shard_size rows); shard boundaries
// depend on the batch, never on the threads. Each shard runs forward, loss and
// backward into its own buffers; shard gradients are then summed in shard order
// and the optimizer takes one step. Every sum has a fixed order, so 1, 2 or 8
// threads give the same bits.
#pragma once

#include "model/augment.hpp"
#include "model/experiment.hpp"
#include "model/network.hpp"
#include "train/shard_pass.hpp"
#include "train/shard_schedule.hpp"
#include "train/diagnostics.hpp"
#include "train/step_exchange.hpp"
#include "train/timeline.hpp"

#include <backplane/metrics.hpp>

#include <backplane/components.hpp>

#include <tbb/task_arena.h>

#include <atomic>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

namespace bp {

constexpr double no_value = std::numeric_limits<double>::quiet_NaN();

// After each step: where the epoch is.
struct StepProgress {
    int64_t epoch, epochs;
    int64_t samples_done, samples;
    double seconds;   // since the epoch began
    double loss;      // running mean training loss this epoch
};

class Trainer {
public:
    // `shared`: run in this arena (a comparison's, shared by concurrent runs) instead
    // of one of train.threads workers. The results are the same bits either way.
    // `augment`: applied to training samples as they are gathered (never in evaluation).
    // `cluster` of several processes: each runs its share of every batch's shards and
    // evaluation's, and they exchange what a step needs (StepExchange); every process
    // then holds the bits one process would.
    Trainer(Network& network, std::shared_ptr<const Loss> loss, std::shared_ptr<Optimizer> optimizer,
            const TrainConfig& config, uint64_t seed, const AugmentConfig& augment,
            tbb::task_arena* shared = nullptr, Cluster* cluster = nullptr);
    ~Trainer();

    // One pass over `train` in shuffled mini-batches; fills epoch, train, samples and
    // train_seconds. Stops early and sets `diverged` on a non-finite loss.
    // `step_rate`, when given, sets the learning rate before each step (1-based in the epoch).
    EpochMetrics run_epoch(int64_t epoch, const Split& train,
                           const std::function<void(const StepProgress&)>& on_step = {},
                           const std::function<double(int64_t)>& step_rate = {});
    // train.diagnostics_every > 0: steps.csv's header, and the rows of the steps since the last call.
    bool diagnosing() const { return diagnostics_ != nullptr; }
    std::string diagnostics_header() const;
    std::string take_diagnostics();

    // --profile: from the next step on, time every step's phases and every node
    // (timeline()); the numbers never change.
    void start_profile();
    const StepTimeline* timeline() const { return timeline_.get(); }

    Evaluation evaluate(const Split& data);
    // counts(true class, predicted class) over `data`: the argmax of the outputs, or
    // output > 0 for a single logit.
    Eigen::MatrixXi confusion(const Split& data, int64_t classes);
    int threads() const { return threads_; }
    // Bytes the busiest process sends to the others in one step of a full batch (0 alone).
    int64_t bytes_per_step() const;
    // How many of the arena's threads have run a training shard so far: the
    // determinism checks need to know that more than one did.
    int threads_used() const;

private:
    struct Shard;
    // What a shard runs: rows [first, first + n) of `order` (all rows when empty) mapped
    // into `data`; training also runs the loss's gradient and backward, timed into `times`
    // when there is one.
    struct ShardJob {
        const Split* data = nullptr;
        std::span<const int64_t> order;
        int64_t first = 0, n = 0;
        float scale = 1;
        StepContext ctx;
        bool training = false;
        ShardTimes* times = nullptr;
    };
    // A shard's job in units that may run on different threads, in order: 0 gathers its
    // rows, 1..L run the L nodes' forward, L + 1 the loss, then (training) the nodes'
    // backward, the last node's first.
    int units(bool training) const;
    void run_unit(Shard& s, int unit);
    void gather(Shard& s);   // unit 0: the job's rows (augmented in training) into s.x and s.y
    // A profiled step's phases and shards [first, last) into the timeline.
    void record_step(int64_t epoch, int64_t step, int64_t samples, const StepMarks& marks, std::size_t first,
                     std::size_t last);
    // Runs `visit(shard, first row, rows, local)` after an evaluation forward of every
    // shard of `data`; over several processes, `local` says this one ran it (its loss and
    // count are everyone's, its outputs only this process's).
    template <class Visit>
    void for_each_eval_shard(const Split& data, Visit&& visit);
    void reduce_gradients(std::size_t shards_used);
    // The shards [first, last) of `used` this process runs: all of them alone.
    std::pair<std::size_t, std::size_t> my_shards(std::size_t used) const;

    Network& network_;
    std::shared_ptr<const Loss> loss_;
    std::shared_ptr<Optimizer> optimizer_;
    TrainConfig config_;
    AugmentConfig augment_;
    Random random_;
    Random augment_random_{0};   // this epoch's augmentation stream: derive(sample index)
    int threads_;
    tbb::task_arena own_arena_;
    tbb::task_arena& arena_;   // own_arena_ or the shared one
    std::vector<std::unique_ptr<Shard>> shards_;    // one per shard of a full batch
    // The reduction's work items: a run of `length` elements at `offset` of the
    // gradient of (layer, parameter). Fixed-size pieces instead of whole tensors, so the
    // threads share the work evenly when one tensor dominates.
    struct ReducePiece {
        std::size_t layer, parameter;
        Eigen::Index offset, length;
    };
    std::vector<ReducePiece> reduce_pieces_;
    std::vector<std::vector<Workspace*>> shard_workspaces_;           // [layer][shard], for end_step
    std::vector<std::string> parameter_names_;
    std::vector<ParameterRef> parameter_refs_;       // what the optimizer sees, built once
    std::atomic<uint64_t> slots_used_{0};            // bit i: arena slot i ran a training shard
    Cluster* cluster_ = nullptr;                     // several processes, or null
    ShardSchedule schedule_;                         // sized for shards_
    std::unique_ptr<StepExchange> exchange_;         // with cluster_
    std::unique_ptr<StepDiagnostics> diagnostics_;   // with train.diagnostics_every
    std::unique_ptr<StepTimeline> timeline_;         // with start_profile()
    std::vector<ShardTimes> shard_times_;            // per shard, this step's (with timeline_)
    std::vector<double> thread_busy_;                // per arena slot, this step's ms in units (with timeline_)
};

// Moves a seeded random `fraction` of `train` into the returned validation split.
Split split_validation(Split& train, double fraction, uint64_t seed);

}  // namespace bp
