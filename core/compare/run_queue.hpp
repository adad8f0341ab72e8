// Which runs of a comparison this process trains: all of them when it is alone; over
// several processes (MPI), those rank 0 hands out from one queue as each process's
// trainers come free. A run is trained whole by one process, so it is the same bits
// wherever it runs; its folder is written by that process (a shared file system).
#pragma once

#include "cluster/cluster.hpp"

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace bp {

class RunQueue {
public:
    struct Assignment {
        std::size_t index;   // the run's place in the comparison
        bool cut;            // it continues from its last checkpoint
    };
    // `todo`: the runs to train, in order (known on rank 0, or alone; ignored elsewhere).
    // `cluster`: several processes, or null.
    RunQueue(Cluster* cluster, std::deque<Assignment> todo);

    // The next run for one of this process's trainers; none when all are handed out.
    // Any thread may ask.
    std::optional<Assignment> next();
    // A run this process trained has ended; `error` is empty unless it failed. On
    // another process than rank 0, tells rank 0.
    void finished(std::size_t index, const std::string& error);

    // Rank 0, on the thread that joined the job, while its own trainers work on
    // others: hands runs to the other processes and hears of their ends, calling
    // `remote_finished(index, rank, error)` for each, until every other process has
    // left.
    void serve(const std::function<void(std::size_t, int, const std::string&)>& remote_finished);
    // Another process, once its trainers are all done: tells rank 0 it leaves.
    void leave();

private:
    Cluster* cluster_;
    std::mutex mutex_;   // guards todo_ (rank 0) or the exchange with rank 0 (the others)
    std::deque<Assignment> todo_;
};

}  // namespace bp
