#include "train/step_exchange.hpp"

#include <algorithm>

namespace bp {

StepExchange::StepExchange(Cluster& cluster, std::vector<Slot> slots) : cluster_(cluster), slots_(std::move(slots)) {
    for (const Matrix* g : slots_.at(0).gradients) elements_ += std::size_t(g->size());
    for (Workspace* w : slots_[0].workspaces) record_ += w->step_statistics().size();
    const std::size_t n = std::size_t(cluster_.size()), most_mine = (slots_.size() + n - 1) / n;
    const std::size_t widest_part = (elements_ + n - 1) / n;
    records_out_.resize(most_mine * record_);
    records_in_.resize(slots_.size() * record_);
    send_.resize(most_mine * elements_);
    receive_.resize(slots_.size() * widest_part);
    part_.resize(widest_part);
    whole_.resize(elements_);
    send_counts_.resize(n);
    receive_counts_.resize(n);
    gather_counts_.resize(n);
}

std::pair<std::size_t, std::size_t> StepExchange::mine(std::size_t used) const {
    return share(used, cluster_.size(), cluster_.rank());
}

void StepExchange::share_results(std::size_t used, bool statistics) {
    const auto [first, last] = mine(used);
    const std::size_t record = statistics ? record_ : 2;   // evaluation leaves the statistics alone
    double* out = records_out_.data();
    for (std::size_t s = first; s < last; ++s) {
        *out++ = *slots_[s].loss;
        *out++ = double(*slots_[s].correct);   // exact: counts stay far below 2^53
        if (!statistics) continue;
        for (Workspace* w : slots_[s].workspaces) {
            const std::span<double> block = w->step_statistics();
            out = std::copy(block.begin(), block.end(), out);
        }
    }
    for (int p = 0; p < cluster_.size(); ++p) {
        const auto [a, b] = share(used, cluster_.size(), p);
        gather_counts_[std::size_t(p)] = int((b - a) * record);
    }
    cluster_.all_gather(std::span<const double>(records_out_.data(), (last - first) * record),
                        std::span<double>(records_in_.data(), used * record), gather_counts_);
    for (std::size_t s = 0; s < used; ++s) {
        if (s >= first && s < last) continue;   // its own shards are already in place
        const double* in = records_in_.data() + s * record;
        *slots_[s].loss = in[0];
        *slots_[s].correct = int64_t(in[1]);
        if (!statistics) continue;
        in += 2;
        for (Workspace* w : slots_[s].workspaces) {
            const std::span<double> block = w->step_statistics();
            std::copy(in, in + block.size(), block.begin());
            in += block.size();
        }
    }
}

void StepExchange::copy_out(const Slot& slot, std::size_t first, std::size_t last, float* to) const {
    std::size_t at = 0;   // where the current tensor starts in the whole
    for (const Matrix* g : slot.gradients) {
        const std::size_t size = std::size_t(g->size()), a = std::max(first, at), b = std::min(last, at + size);
        if (a < b) to = std::copy(g->data() + (a - at), g->data() + (b - at), to);
        at += size;
    }
}

void StepExchange::copy_in(Slot& slot, std::size_t first, std::size_t last, const float* from) const {
    std::size_t at = 0;
    for (Matrix* g : slot.gradients) {
        const std::size_t size = std::size_t(g->size()), a = std::max(first, at), b = std::min(last, at + size);
        if (a < b) {
            std::copy(from, from + (b - a), g->data() + (a - at));
            from += b - a;
        }
        at += size;
    }
}

void StepExchange::reduce_gradients(std::size_t used) {
    const int n = cluster_.size(), me = cluster_.rank();
    const auto [first, last] = mine(used);
    const auto [part_first, part_last] = share(elements_, n, me);
    const std::size_t part = part_last - part_first;
    // To each owner q: the values of q's part from each of this process's shards, in shard order.
    float* out = send_.data();
    for (int q = 0; q < n; ++q) {
        const auto [a, b] = share(elements_, n, q);
        for (std::size_t s = first; s < last; ++s, out += b - a) copy_out(slots_[s], a, b, out);
        send_counts_[std::size_t(q)] = int((last - first) * (b - a));
        const auto [pa, pb] = share(used, n, q);
        receive_counts_[std::size_t(q)] = int((pb - pa) * part);
    }
    cluster_.all_to_all(std::span<const float>(send_.data(), std::size_t(out - send_.data())), send_counts_,
                        std::span<float>(receive_.data(), used * part), receive_counts_);
    // Received in rank order, and ranks hold shards in order: shard s's values are block s.
    // The sum is Trainer::reduce_gradients's: shard 0, += shard 1, += shard 2, ...
    Eigen::Map<Eigen::ArrayXf> sum(part_.data(), Eigen::Index(part));
    sum = Eigen::Map<const Eigen::ArrayXf>(receive_.data(), Eigen::Index(part));
    for (std::size_t s = 1; s < used; ++s)
        sum += Eigen::Map<const Eigen::ArrayXf>(receive_.data() + s * part, Eigen::Index(part));
    for (int p = 0; p < n; ++p) {
        const auto [a, b] = share(elements_, n, p);
        gather_counts_[std::size_t(p)] = int(b - a);
    }
    cluster_.all_gather(std::span<const float>(part_.data(), part), whole_, gather_counts_);
    copy_in(slots_[0], 0, elements_, whole_.data());
}

int64_t StepExchange::bytes_sent(std::size_t used) const {
    const int n = cluster_.size();
    int64_t most = 0;
    for (int p = 0; p < n; ++p) {
        const auto [first, last] = share(used, n, p);
        const auto [part_first, part_last] = share(elements_, n, p);
        const std::size_t others = elements_ - (part_last - part_first);   // what p does not own
        // Its shards' values of the others' parts, its own part's sum to each other
        // process, its shards' results to each other process.
        most = std::max(most, int64_t(sizeof(float) * ((last - first) * others + std::size_t(n - 1) * (part_last - part_first)) +
                                      sizeof(double) * (last - first) * record_ * std::size_t(n - 1)));
    }
    return most;
}

}  // namespace bp
