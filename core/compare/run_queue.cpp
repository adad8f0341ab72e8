#include "compare/run_queue.hpp"

#include <chrono>
#include <sstream>
#include <thread>

namespace bp {

namespace {

// The messages between rank 0 and the others.
enum Tag { ask = 1, assign = 2, ended = 3, left = 4 };

}  // namespace

RunQueue::RunQueue(Cluster* cluster, std::deque<Assignment> todo)
    : cluster_(cluster && !cluster->alone() ? cluster : nullptr), todo_(std::move(todo)) {}

std::optional<RunQueue::Assignment> RunQueue::next() {
    const std::lock_guard lock(mutex_);
    if (!cluster_ || cluster_->rank() == 0) {
        if (todo_.empty()) return std::nullopt;
        const Assignment a = todo_.front();
        todo_.pop_front();
        return a;
    }
    // One question and its answer at a time: the lock keeps another trainer's between them.
    cluster_->send(0, ask, "");
    std::istringstream answer(cluster_->receive(0).text);
    long long index = -1;
    int cut = 0;
    answer >> index >> cut;
    if (index < 0) return std::nullopt;
    return Assignment{std::size_t(index), cut != 0};
}

void RunQueue::finished(std::size_t index, const std::string& error) {
    if (!cluster_ || cluster_->rank() == 0) return;
    const std::lock_guard lock(mutex_);
    cluster_->send(0, ended, std::to_string(index) + "\n" + error);
}

void RunQueue::serve(const std::function<void(std::size_t, int, const std::string&)>& remote_finished) {
    if (!cluster_) return;
    for (int others = cluster_->size() - 1; others > 0;) {
        Cluster::Message m = cluster_->poll();
        if (m.source < 0) {   // nothing yet: the runs take seconds, a millisecond's wait costs nothing
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            continue;
        }
        if (m.tag == ask) {
            const std::optional<Assignment> a = next();
            cluster_->send(m.source, assign, a ? std::to_string(a->index) + " " + (a->cut ? "1" : "0") : "-1 0");
        } else if (m.tag == ended) {
            const std::size_t newline = m.text.find('\n');
            remote_finished(std::stoull(m.text.substr(0, newline)), m.source, m.text.substr(newline + 1));
        } else if (m.tag == left) {
            --others;
        }
    }
}

void RunQueue::leave() {
    if (cluster_ && cluster_->rank() != 0) cluster_->send(0, left, "");
}

}  // namespace bp
