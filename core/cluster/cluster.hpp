// The processes of one job: those an MPI launcher (mpirun, srun --mpi=pmix) started
// together, or this process alone. Everything above talks to other processes through
// this class only, so a build without MPI (BACKPLANE_MPI off) is a cluster of one and
// nothing else changes.
//
// The calls are MPI's collectives, made by every process in the same order from one
// thread of each (the one that joined the job).
#pragma once

#include <backplane/error.hpp>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace bp {

// Thrown on the processes that did not fail when another one did: that one prints the
// message (agree() below), these exit quietly.
class PeerFailed : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Cluster {
public:
    // Joins the job when a launcher started this process; otherwise a cluster of one.
    // Throws bp::Error when a launcher started several processes but this build has no
    // MPI (they would each train the same thing), or MPI cannot start.
    static Cluster& join();
    // The cluster join() made; a cluster of one before that.
    static Cluster& world();
    // Leaves the job (MPI_Finalize); the process exits normally after it.
    static void leave();
    // Ends every process of the job now (MPI_Abort): after an error on one process
    // while the others may be waiting for it in a collective.
    [[noreturn]] static void abort(int status);

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool alone() const { return size_ == 1; }
    // "Open MPI v4.1.4, ..." or "not built with MPI".
    static std::string library();

    // Runs `step` on every process, then checks that every one succeeded. When some
    // failed, the first of them (by rank) throws its error, its message prefixed by
    // its rank when that is not 0, and the others throw PeerFailed: one message, and no
    // process left waiting in a collective the failed ones never reach.
    void agree(const std::function<void()>& step);
    // An agree() found a failure: every process knows, none waits for another, and each
    // may simply exit (no abort needed).
    bool failed_together() const { return failed_together_; }

    // Collectives; every process calls them with the same counts.
    // all[p's part] = p's `mine`; counts[p] elements from each process, in rank order.
    void all_gather(std::span<const double> mine, std::span<double> all, std::span<const int> counts);
    void all_gather(std::span<const float> mine, std::span<float> all, std::span<const int> counts);
    // Sends send[offset of q, count for q] to each q; receives from each p into recv, in rank order.
    void all_to_all(std::span<const float> send, std::span<const int> send_counts, std::span<float> recv,
                    std::span<const int> recv_counts);
    // Element-wise sum over processes, in place (integers: exact in any order).
    void sum(std::span<int> values);
    // Rank 0's text, on every process.
    std::string broadcast(const std::string& text);

    // Point to point: a tagged text from one process to another.
    struct Message {
        int source = -1, tag = 0;
        std::string text;
    };
    void send(int to, int tag, const std::string& text);
    // The next message from `from` (any process: -1), waiting for it.
    Message receive(int from = -1);
    // The next message from any process if one has arrived; source -1 when none has.
    Message poll();

private:
    Cluster() = default;
    static const int* offsets(std::span<const int> counts, std::vector<int>& at);

    int rank_ = 0, size_ = 1;
    bool failed_together_ = false;
    std::vector<int> at_, at_too_;   // the collectives' displacements, one per process
};

// [first, last) of `items` split into `parts` contiguous runs as equal as can be: part p's.
inline std::pair<std::size_t, std::size_t> share(std::size_t items, int parts, int p) {
    return {items * std::size_t(p) / std::size_t(parts), items * std::size_t(p + 1) / std::size_t(parts)};
}

}  // namespace bp
