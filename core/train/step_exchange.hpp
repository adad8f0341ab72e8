// What the processes of a data-parallel run exchange in a step (MPI, core/cluster),
// so that every process ends each step with the bits one process would have.
//
// Every process holds a buffer slot for every shard of a batch, as one process does,
// and runs a contiguous run of them: share(shards, processes, rank). Then:
//
//  1. share_results: each shard's loss, count of correct predictions and its layers'
//     step statistics (batch norm's mean and variance) go to every process (one
//     allgather of (2 + statistics) doubles per shard), so the loss, the divergence
//     check and end_step see every shard, in shard order.
//  2. reduce_gradients: the gradient is summed exactly as Trainer sums it in one
//     process: shard 0 + shard 1 + shard 2 ..., element by element, in shard order.
//     MPI_Allreduce's order is unspecified (it changes with message size and process
//     count), so it is not used. Instead each process owns a contiguous 1/N of the
//     gradient's elements; every process sends each owner its shards' values of the
//     owner's part (one all-to-all: a reduce-scatter that keeps the shards apart); the
//     owner sums them in shard order; one allgather hands every process the whole sum.
//
// Bytes a process sends per step, for E gradient elements, S shards and N processes
// (it receives about as many): 4 E (N-1)/N * (S/N + 1), against 8 E (N-1)/N for a
// ring allreduce; the same when S = N. bytes_sent() is the exact figure.
#pragma once

#include "cluster/cluster.hpp"

#include <backplane/components.hpp>

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

namespace bp {

class StepExchange {
public:
    // Per shard slot: where its loss and correct count are, its gradient tensors (those
    // the optimizer reads, in order) and its layers' workspaces, whose step statistics
    // travel (asked for at every step: only their size is fixed). Slot 0's gradients
    // receive the sum.
    struct Slot {
        double* loss;
        int64_t* correct;
        std::vector<Matrix*> gradients;
        std::vector<Workspace*> workspaces;
    };
    StepExchange(Cluster& cluster, std::vector<Slot> slots);

    // The shards [first, last) of a step of `used` shards that this process runs.
    std::pair<std::size_t, std::size_t> mine(std::size_t used) const;
    // Every slot below `used` gets the loss, count (and with `statistics`, in training,
    // the step statistics) of the process that ran it.
    void share_results(std::size_t used, bool statistics);
    // Slot 0's gradients := the sum over slots 0..used-1 in slot order.
    void reduce_gradients(std::size_t used);
    // Bytes the busiest process sends in one training step of `used` shards.
    int64_t bytes_sent(std::size_t used) const;

private:
    // Elements [first, last) of the gradient of `slot`, all tensors laid end to end.
    void copy_out(const Slot& slot, std::size_t first, std::size_t last, float* to) const;
    void copy_in(Slot& slot, std::size_t first, std::size_t last, const float* from) const;

    Cluster& cluster_;
    std::vector<Slot> slots_;
    std::size_t elements_ = 0;       // gradient elements, all tensors
    std::size_t record_ = 2;         // doubles per shard in share_results, statistics included
    // Buffers sized once for the largest step: a step allocates nothing.
    std::vector<double> records_out_, records_in_;
    std::vector<float> send_, receive_, part_, whole_;
    std::vector<int> send_counts_, receive_counts_, gather_counts_;
};

}  // namespace bp
