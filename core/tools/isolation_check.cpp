#include "tools/isolation_check.hpp"

#include "tools/gradient_check.hpp"

#include <algorithm>
#include <barrier>
#include <exception>
#include <thread>
#include <vector>

namespace bp {

namespace {

constexpr int shards = 3;
constexpr int64_t rows = 4;

// One shard's data and what the layer computed from it.
struct ShardRun {
    std::vector<Matrix> x, dx;   // per input
    Matrix dy, y;
    std::vector<Matrix> grads;
    std::unique_ptr<Workspace> ws;
    StepContext ctx;
};

ShardRun make_shard(Layer& layer, const std::vector<Shape>& inputs, int64_t outputs, const Random& r, int s,
                    bool training, int64_t indices) {
    ShardRun run;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        const Random stream = k == 0 ? r.derive("x").derive(s) : r.derive("x").derive(s).derive(k);
        const int64_t ids = k == 0 ? indices : 0;
        run.x.push_back(check_input(rows, inputs[k].size(), stream, ids));
        run.dx.emplace_back(ids > 0 ? 0 : rows, inputs[k].size());
    }
    run.dy.resize(rows, outputs);
    for (int64_t i = 0; i < run.dy.size(); ++i) run.dy.data()[i] = float(r.derive("dy").derive(s).normal(uint64_t(i)));
    run.y.resize(rows, outputs);
    for (const auto& p : layer.parameters()) run.grads.emplace_back(p.value.rows(), p.value.cols());
    run.ws = layer.make_workspace(rows);
    run.ctx = StepContext{training, r.derive("step"), int64_t(s) * rows};
    return run;
}

void forward(const Layer& layer, ShardRun& s) {
    const std::vector<ConstMatrixRef> xs(s.x.begin(), s.x.end());
    layer.forward_merge(xs, s.y, s.ws.get(), s.ctx);
}
void backward(const Layer& layer, ShardRun& s) {
    const std::vector<ConstMatrixRef> xs(s.x.begin(), s.x.end());
    std::vector<MatrixRef> dxs(s.dx.begin(), s.dx.end());
    layer.backward_merge(xs, s.y, s.dy, dxs, s.grads, s.ws.get(), s.ctx);
}

// The same shape and bits (Eigen's == alone compares no elements of an empty matrix).
bool same(const Matrix& a, const Matrix& b) { return a.rows() == b.rows() && a.cols() == b.cols() && a == b; }

// "" when `got` holds the reference's bits.
std::string compare(const ShardRun& want, const ShardRun& got, int shard, const std::string& how) {
    std::string what;
    if (!same(want.y, got.y)) what = "its output";
    for (std::size_t k = 0; what.empty() && k < want.dx.size(); ++k)
        if (!same(want.dx[k], got.dx[k]))
            what = want.dx.size() == 1 ? "its input gradient" : "its gradient of input " + std::to_string(k + 1);
    for (std::size_t i = 0; what.empty() && i < want.grads.size(); ++i)
        if (!same(want.grads[i], got.grads[i])) what = "the gradient of parameter " + std::to_string(i);
    if (what.empty()) return "";
    return "shard " + std::to_string(shard + 1) + " of " + std::to_string(shards) + " got another " + what + " " + how +
           " than alone: the layer keeps a shard's data in itself (a member, a mutable cache); keep it in the "
           "shard's Workspace (make_workspace)";
}

// end_step must read only each workspace's step_statistics(): over several processes,
// a shard another process ran arrives as that block alone, in a fresh workspace. ""
// when end_step folds the same buffers from such copies as from the shards' own.
std::string end_step_problem(Layer& layer, std::vector<ShardRun>& shards) {
    auto buffers = [&] {
        std::vector<Matrix> values;
        for (const auto& b : layer.buffers()) values.push_back(b.value);
        return values;
    };
    auto restore = [&](const std::vector<Matrix>& values) {
        for (std::size_t i = 0; i < values.size(); ++i) layer.buffers()[i].value = values[i];
    };
    const std::vector<Matrix> before = buffers();
    std::vector<Workspace*> own;
    for (auto& s : shards) own.push_back(s.ws.get());
    layer.end_step(own);
    const std::vector<Matrix> want = buffers();
    restore(before);
    std::vector<std::unique_ptr<Workspace>> copies;
    std::vector<Workspace*> handed;
    for (auto& s : shards) {
        copies.push_back(layer.make_workspace(rows));
        const std::span<double> from = s.ws->step_statistics(), to = copies.back()->step_statistics();
        if (from.size() != to.size())
            return "a workspace's step_statistics() holds " + std::to_string(from.size()) + " values after a forward, " +
                   std::to_string(to.size()) + " when made: its size must be fixed in make_workspace";
        std::copy(from.begin(), from.end(), to.begin());
        handed.push_back(copies.back().get());
    }
    layer.end_step(handed);
    const std::vector<Matrix> got = buffers();
    restore(before);
    for (std::size_t i = 0; i < want.size(); ++i)
        if (!same(want[i], got[i]))
            return "end_step folds another " + layer.buffers()[i].name + " from workspaces holding only their "
                   "step_statistics() than from the shards' own: over several processes (MPI) that block is all "
                   "a shard run elsewhere brings; keep everything end_step reads in it";
    return "";
}

}  // namespace

std::string isolation_problem(Layer& layer, const std::vector<Shape>& inputs, uint64_t seed, bool training,
                              int64_t indices) {
    const Random r = Random(seed).derive("isolation");
    const int64_t outputs = layer.build_merge(inputs, r.derive("init")).size();
    auto fresh = [&] {
        std::vector<ShardRun> runs;
        for (int s = 0; s < shards; ++s) runs.push_back(make_shard(layer, inputs, outputs, r, s, training, indices));
        return runs;
    };
    std::vector<ShardRun> alone = fresh();
    for (auto& s : alone) forward(layer, s), backward(layer, s);
    if (training && alone[0].ws)
        if (auto p = end_step_problem(layer, alone); !p.empty()) return p;

    // Interleaved on one thread: every forward, then every backward, last shard first.
    std::vector<ShardRun> interleaved = fresh();
    for (auto& s : interleaved) forward(layer, s);
    for (int s = shards - 1; s >= 0; --s) backward(layer, interleaved[s]);
    for (int s = 0; s < shards; ++s)
        if (auto p = compare(alone[s], interleaved[s], s, "when shards interleave (all forwards, then all backwards)");
            !p.empty())
            return p;

    // At once on three threads, in step: forwards, then backwards, many times.
    for (int round = 0; round < 50; ++round) {
        std::vector<ShardRun> together = fresh();
        std::barrier step(shards);
        std::vector<std::exception_ptr> errors(shards);
        std::vector<std::thread> threads;
        for (int s = 0; s < shards; ++s)
            threads.emplace_back([&, s] {
                // A throw leaves the barrier, so the other shards do not wait for it forever.
                try {
                    step.arrive_and_wait();
                    forward(layer, together[s]);
                } catch (...) {
                    errors[std::size_t(s)] = std::current_exception();
                    step.arrive_and_drop();
                    return;
                }
                step.arrive_and_wait();
                try {
                    backward(layer, together[s]);
                } catch (...) {
                    errors[std::size_t(s)] = std::current_exception();
                }
            });
        for (auto& t : threads) t.join();
        for (const auto& e : errors)
            if (e) std::rethrow_exception(e);
        for (int s = 0; s < shards; ++s)
            if (auto p = compare(alone[s], together[s], s, "when shards run on three threads at once"); !p.empty())
                return p;
    }
    return "";
}

}  // namespace bp
