#include "train/trainer.hpp"

#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <numeric>

namespace bp {

namespace {

// Lets train.threads exceed the core count (for determinism checks) without TBB
// capping the arena. One limit for the whole process, set before the first arena and
// never lifted: oneTBB 2021.8 loses its workers for later arenas when a
// global_control is destroyed (measured: after one 2-thread arena and its limit were
// gone, 9 of 48 later 2-thread arenas ran every task on one thread), so each trainer
// making and dropping its own limit left comparisons' later runs on one thread.
int allow_threads(int threads) {
    static const tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 1024);
    return threads;
}

}  // namespace

// Everything one shard touches in a step, sized once for shard_size rows.
struct Trainer::Shard {
    Shard(const Network& network, int64_t rows) : x(rows, network.input().size()), pass(network, rows) {}
    Matrix x, y;      // the shard's rows, gathered
    ShardPass pass;   // the network's buffers for them
    ShardJob job;     // what it runs now
    double loss = 0;
    int64_t correct = 0;
};

Trainer::Trainer(Network& network, std::shared_ptr<const Loss> loss, std::shared_ptr<Optimizer> optimizer,
                 const TrainConfig& config, uint64_t seed, const AugmentConfig& augment, tbb::task_arena* shared,
                 Cluster* cluster)
    : network_(network),
      loss_(std::move(loss)),
      optimizer_(std::move(optimizer)),
      config_(config),
      augment_(augment),
      random_(Random(seed)),
      threads_(allow_threads(config.threads > 0 ? int(config.threads) : tbb::info::default_concurrency())),
      own_arena_(threads_),
      arena_(shared ? *shared : own_arena_),
      cluster_(cluster && !cluster->alone() ? cluster : nullptr) {
    const int64_t rows = config_.shard_size;
    const auto& layers = network_.layers();
    const int64_t slots = (config_.batch_size + rows - 1) / rows;
    for (int64_t s = 0; s < slots; ++s) shards_.push_back(std::make_unique<Shard>(network_, rows));
    schedule_.resize(shards_.size());
    // The batch's gradient is summed into shard 0's buffers, which the optimizer reads.
    const auto params = network_.parameters();   // layer by layer, parameter by parameter
    parameter_names_.reserve(params.size());
    parameter_refs_.reserve(params.size());
    for (const auto& p : params) parameter_names_.push_back(p.name);
    // A frozen node's parameters are neither reduced nor given to the optimizer.
    for (std::size_t l = 0, index = 0; l < layers.size(); ++l) {
        for (std::size_t p = 0; p < shards_[0]->pass.grads()[l].size(); ++p, ++index) {
            if (!layers[l].trainable) continue;
            const Matrix& gradient = shards_[0]->pass.grads()[l][p];
            parameter_refs_.push_back({parameter_names_[index], *params[index].value, gradient, layers[l].label,
                                       params[index].role, layers[l].lr_scale});
            const Eigen::Index size = gradient.size(), piece = 16384;   // 64 KiB of floats
            for (Eigen::Index at = 0; at < size; at += piece)
                reduce_pieces_.push_back({l, p, at, std::min(piece, size - at)});
        }
        auto& ws = shard_workspaces_.emplace_back();
        for (const auto& shard : shards_) ws.push_back(shard->pass.workspace(l));
    }
    if (config_.diagnostics_every > 0)
        diagnostics_ = std::make_unique<StepDiagnostics>(parameter_refs_, config_.diagnostics_every);
    if (!cluster_) return;
    std::vector<StepExchange::Slot> exchange_slots;
    for (auto& shard : shards_) {
        StepExchange::Slot& slot = exchange_slots.emplace_back(StepExchange::Slot{&shard->loss, &shard->correct, {}, {}});
        for (std::size_t l = 0; l < layers.size(); ++l) {
            if (layers[l].trainable)
                for (auto& g : shard->pass.grads()[l]) slot.gradients.push_back(&g);
            if (Workspace* ws = shard->pass.workspace(l); ws && !ws->step_statistics().empty())
                slot.workspaces.push_back(ws);
        }
    }
    exchange_ = std::make_unique<StepExchange>(*cluster_, std::move(exchange_slots));
}

std::pair<std::size_t, std::size_t> Trainer::my_shards(std::size_t used) const {
    return exchange_ ? exchange_->mine(used) : std::pair{std::size_t(0), used};
}

int64_t Trainer::bytes_per_step() const {
    return exchange_ ? exchange_->bytes_sent(shards_.size()) : 0;
}

Trainer::~Trainer() = default;

int Trainer::threads_used() const { return std::popcount(slots_used_.load()); }

namespace {

// 0..n-1, in the order of a Fisher-Yates shuffle drawn from `shuffle` when there is one.
std::vector<int64_t> permutation(int64_t n, const Random* shuffle) {
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    if (shuffle)
        for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[shuffle->below(i, uint64_t(i) + 1)]);
    return order;
}

}  // namespace

int Trainer::units(bool training) const {
    const int nodes = int(network_.layers().size());
    return training ? 2 * nodes + 2 : nodes + 2;
}

void Trainer::gather(Shard& s) {
    const ShardJob& job = s.job;
    if (s.y.cols() != job.data->y.cols()) s.y.resize(s.x.rows(), job.data->y.cols());  // once: targets' width
    if (timeline_) s.pass.time_nodes(job.times != nullptr);   // a training step's nodes, not evaluation's
    const bool augmenting = job.training && augment_.any();
    for (int64_t r = 0; r < job.n; ++r) {
        const int64_t src = job.order.empty() ? job.first + r : job.order[std::size_t(job.first + r)];
        if (augmenting)
            augment(job.data->x.row(src), s.x.row(r), network_.input(), augment_, augment_random_.derive(uint64_t(src)));
        else s.x.row(r) = job.data->x.row(src);
        s.y.row(r) = job.data->y.row(src);
    }
}

void Trainer::run_unit(Shard& s, int unit) {
    const ShardJob& job = s.job;
    const int nodes = int(network_.layers().size());
    const int64_t n = job.n;
    const Clock::time_point start = job.times ? Clock::now() : Clock::time_point{};
    double ShardTimes::*phase = &ShardTimes::forward;
    if (unit == 0) {
        gather(s);
        phase = &ShardTimes::gather;
    } else if (unit <= nodes) {
        s.pass.forward_node(std::size_t(unit - 1), s.x, n, job.ctx);
    } else if (unit == nodes + 1) {
        const auto pred = s.pass.output(n);
        s.loss = loss_->evaluate(pred, s.y.topRows(n), s.pass.output_gradient(job.training ? n : 0), job.scale);
        s.correct = loss_->count_correct(pred, s.y.topRows(n));
        phase = &ShardTimes::loss;
    } else {
        s.pass.backward_node(std::size_t(2 * nodes + 1 - unit), s.x, n, job.ctx);
        phase = &ShardTimes::backward;
    }
    if (!job.training) return;
    const int slot = tbb::this_task_arena::current_thread_index();
    const uint64_t bit = slot >= 0 && slot < 64 ? uint64_t(1) << slot : 0;
    if (bit && !(slots_used_.load(std::memory_order_relaxed) & bit)) slots_used_.fetch_or(bit, std::memory_order_relaxed);
    if (!job.times) return;
    const double ms = elapsed_ms(start, Clock::now());
    job.times->*phase += ms;
    if (slot >= 0 && slot < threads_) thread_busy_[std::size_t(slot)] += ms;
}

void Trainer::start_profile() {
    std::vector<std::string> nodes;
    for (const auto& l : network_.layers()) nodes.push_back(l.label);
    timeline_ = std::make_unique<StepTimeline>(threads_, std::move(nodes));
    shard_times_.assign(shards_.size(), ShardTimes{});
    thread_busy_.assign(std::size_t(threads_), 0.0);
    for (auto& shard : shards_) shard->pass.time_nodes(true);
}

void Trainer::record_step(int64_t epoch, int64_t step, int64_t samples, const StepMarks& marks, std::size_t first,
                          std::size_t last) {
    const bool warming = timeline_->steps() == 0;   // first touches: left out of the nodes' sums
    timeline_->add(epoch, step, samples, marks, std::span(shard_times_).subspan(first, last - first), thread_busy_);
    std::fill(thread_busy_.begin(), thread_busy_.end(), 0.0);
    for (std::size_t s = first; s < last; ++s) {
        auto& forward = shards_[s]->pass.forward_ms();
        auto& backward = shards_[s]->pass.backward_ms();
        for (std::size_t i = 0; i < forward.size(); ++i) {
            if (!warming) timeline_->node_forward()[i] += forward[i], timeline_->node_backward()[i] += backward[i];
            forward[i] = backward[i] = 0;
        }
    }
}

// shard 0 += shard 1, += shard 2, ... in shard order, whatever thread sums it.
void Trainer::reduce_gradients(std::size_t shards_used) {
    if (shards_used < 2) return;
    tbb::parallel_for(std::size_t(0), reduce_pieces_.size(), [&](std::size_t i) {
        const ReducePiece& r = reduce_pieces_[i];
        auto piece = [&](Matrix& m) { return m.reshaped<Eigen::RowMajor>().segment(r.offset, r.length); };
        auto total = piece(shards_[0]->pass.grads()[r.layer][r.parameter]);
        for (std::size_t s = 1; s < shards_used; ++s) total += piece(shards_[s]->pass.grads()[r.layer][r.parameter]);
    }, tbb::static_partitioner());
}

std::string Trainer::diagnostics_header() const { return diagnostics_ ? diagnostics_->header() : ""; }

std::string Trainer::take_diagnostics() { return diagnostics_ ? diagnostics_->take_rows() : ""; }

EpochMetrics Trainer::run_epoch(int64_t epoch, const Split& train,
                                const std::function<void(const StepProgress&)>& on_step,
                                const std::function<double(int64_t)>& step_rate) {
    const auto start = Clock::now();
    const int64_t samples = train.x.rows();

    // Fisher-Yates from the counter-based stream of this epoch.
    const Random shuffle = random_.derive("shuffle").derive(uint64_t(epoch));
    const std::vector<int64_t> order = permutation(samples, config_.shuffle ? &shuffle : nullptr);
    augment_random_ = random_.derive("augment").derive(uint64_t(epoch));

    EpochMetrics m;
    m.epoch = epoch;
    double loss_sum = 0;
    int64_t correct = 0, done = 0;
    const int64_t rows = config_.shard_size;
    const int64_t steps = (samples + config_.batch_size - 1) / config_.batch_size;
    if (diagnostics_) diagnostics_->reserve(steps);
    if (timeline_) timeline_->reserve(steps);
    arena_.execute([&] {
        StepMarks marks;
        // With the timeline, the moment a phase ends.
        auto mark = [&](Clock::time_point StepMarks::*at) {
            if (timeline_) marks.*at = Clock::now();
        };
        for (int64_t first = 0, step = 0; first < samples; first += config_.batch_size, ++step) {
            mark(&StepMarks::start);
            const int64_t batch = std::min(config_.batch_size, samples - first);
            const std::size_t used = std::size_t((batch + rows - 1) / rows);
            const Random step_random = random_.derive("step").derive(uint64_t(epoch)).derive(uint64_t(step));
            const auto [mine_first, mine_last] = my_shards(used);
            for (std::size_t s = mine_first; s < mine_last; ++s) {
                StepContext ctx{true, step_random, int64_t(s) * rows};
                const int64_t n = std::min(rows, batch - ctx.first_row);
                ShardTimes* times = timeline_ ? &shard_times_[s] : nullptr;
                if (times) *times = ShardTimes{};
                shards_[s]->job = ShardJob{&train, order, first + ctx.first_row, n, 1.0f / float(batch), ctx, true, times};
            }
            schedule_.run(mine_first, mine_last, units(true), threads_,
                          [&](std::size_t s, int unit) { run_unit(*shards_[s], unit); });
            mark(&StepMarks::shards);
            if (exchange_) exchange_->share_results(used, true);
            double batch_loss = 0;
            for (std::size_t s = 0; s < used; ++s) {
                batch_loss += shards_[s]->loss;
                correct += shards_[s]->correct;
            }
            loss_sum += batch_loss;
            done += batch;
            if (!std::isfinite(batch_loss)) {
                m.diverged = true;
                break;
            }
            if (exchange_) exchange_->reduce_gradients(used);
            mark(&StepMarks::exchange);
            if (!exchange_) reduce_gradients(used);
            mark(&StepMarks::reduce);
            if (step_rate) optimizer_->set_learning_rate(step_rate(step + 1));
            // Numbered over the run: the steps of the epochs before, then this one's.
            const int64_t run_step = (epoch - 1) * steps + step + 1;
            const bool diagnose = diagnostics_ && diagnostics_->due(run_step);
            if (diagnose) diagnostics_->before_update(parameter_refs_);
            optimizer_->step(parameter_refs_);
            mark(&StepMarks::optimizer);
            if (diagnose)
                diagnostics_->after_update(parameter_refs_, epoch, run_step, optimizer_->learning_rate(),
                                           batch_loss / double(batch));
            const auto& layers = network_.layers();
            for (std::size_t l = 0; l < layers.size(); ++l)
                layers[l].layer->end_step(std::span<Workspace* const>(shard_workspaces_[l].data(), used));
            if (on_step) {
                const double secs = std::chrono::duration<double>(Clock::now() - start).count();
                on_step({epoch, config_.epochs, done, samples, secs, loss_sum / double(done)});
            }
            mark(&StepMarks::end);
            if (timeline_) record_step(epoch, run_step, batch, marks, mine_first, mine_last);
        }
    });
    m.train_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    m.samples = done;
    m.train.loss = loss_sum / double(done);
    if (shards_[0]->correct >= 0) m.train.accuracy = double(correct) / (double(done) * double(train.y.cols()));
    m.seconds = m.train_seconds;
    return m;
}

template <class Visit>
void Trainer::for_each_eval_shard(const Split& data, Visit&& visit) {
    const int64_t rows = config_.shard_size, samples = data.x.rows();
    const int64_t chunk = rows * int64_t(shards_.size());
    arena_.execute([&] {
        for (int64_t first = 0; first < samples; first += chunk) {
            const int64_t count = std::min(chunk, samples - first);
            const std::size_t used = std::size_t((count + rows - 1) / rows);
            const auto [mine_first, mine_last] = my_shards(used);
            for (std::size_t s = mine_first; s < mine_last; ++s) {
                StepContext ctx{false, random_, int64_t(s) * rows};
                shards_[s]->job = ShardJob{&data, {}, first + ctx.first_row, std::min(rows, count - ctx.first_row), 1.0f, ctx, false};
            }
            schedule_.run(mine_first, mine_last, units(false), threads_,
                          [&](std::size_t s, int unit) { run_unit(*shards_[s], unit); });
            if (exchange_) exchange_->share_results(used, false);
            for (std::size_t s = 0; s < used; ++s) {
                const int64_t start = int64_t(s) * rows;
                visit(*shards_[s], first + start, std::min(rows, count - start), s >= mine_first && s < mine_last);
            }
        }
    });
}

Evaluation Trainer::evaluate(const Split& data) {
    double loss_sum = 0;
    int64_t correct = 0;
    for_each_eval_shard(data, [&](const Shard& s, int64_t, int64_t, bool) {
        loss_sum += s.loss;
        correct += s.correct;
    });
    Evaluation e;
    e.loss = loss_sum / double(data.x.rows());
    if (shards_[0]->correct >= 0) e.accuracy = double(correct) / (double(data.x.rows()) * double(data.y.cols()));
    return e;
}

Eigen::MatrixXi Trainer::confusion(const Split& data, int64_t classes) {
    Eigen::MatrixXi counts = Eigen::MatrixXi::Zero(classes, classes);
    for_each_eval_shard(data, [&](const Shard& s, int64_t first, int64_t n, bool local) {
        if (!local) return;   // another process counts it
        const ConstMatrixRef out = s.pass.output(n);
        const Eigen::Index positions = data.y.cols(), width = out.cols() / positions;   // a sequence: [T, classes]
        for (int64_t r = 0; r < n; ++r)
            for (Eigen::Index t = 0; t < positions; ++t) {
                const auto logits = out.row(r).segment(t * width, width);
                Eigen::Index predicted = logits(0) > 0 ? 1 : 0;
                if (width > 1) logits.maxCoeff(&predicted);
                counts(int64_t(data.y(first + r, t)), predicted) += 1;
            }
    });
    if (cluster_) cluster_->sum(std::span<int>(counts.data(), std::size_t(counts.size())));
    return counts;
}

Split split_validation(Split& train, double fraction, uint64_t seed) {
    const int64_t total = train.x.rows();
    const int64_t held = int64_t(std::floor(fraction * double(total)));
    if (held <= 0) return {Matrix(0, train.x.cols()), Matrix(0, train.y.cols())};
    const Random r = Random(seed).derive("validation_split");
    const std::vector<int64_t> order = permutation(total, &r);
    Split kept{Matrix(total - held, train.x.cols()), Matrix(total - held, train.y.cols())};
    Split val{Matrix(held, train.x.cols()), Matrix(held, train.y.cols())};
    for (int64_t i = 0; i < total; ++i) {
        Split& to = i < total - held ? kept : val;
        const int64_t row = i < total - held ? i : i - (total - held);
        to.x.row(row) = train.x.row(order[i]);
        to.y.row(row) = train.y.row(order[i]);
    }
    train = std::move(kept);
    return val;
}

}  // namespace bp
