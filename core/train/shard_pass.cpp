#include "train/shard_pass.hpp"

#include <algorithm>

namespace bp {

ShardPass::ShardPass(const Network& network, int64_t rows)
    : network_(network), no_input_gradient_(0, network.input().size()) {
    const auto& layers = network.layers();
    std::size_t widest = 0;
    for (const auto& l : layers) {
        out_.emplace_back(rows, l.output.size());
        dout_.emplace_back(rows, l.output.size());
        workspace_.push_back(l.layer->make_workspace(rows));
        auto& g = grads_.emplace_back();
        for (const auto& p : l.layer->parameters()) g.emplace_back(p.value.rows(), p.value.cols());
        bool learns = l.trainable && !l.layer->parameters().empty();
        for (const auto s : l.sources) learns = learns || (s >= 0 && learns_[std::size_t(s)]);
        learns_.push_back(learns);
        widest = std::max(widest, l.sources.size());
    }
    // The first reader in backward order writes; the rest get a buffer to add from.
    input_gradients_.resize(layers.size());
    std::vector<bool> written(layers.size(), false);
    for (std::size_t i = layers.size(); i-- > 0;) {
        for (const auto s : layers[i].sources) {
            InputGradient g{s, s >= 0 && learns_[std::size_t(s)], -1};
            if (g.needed) {
                if (written[std::size_t(s)]) {
                    g.extra = int(extras_.size());
                    extras_.emplace_back(rows, layers[std::size_t(s)].output.size());
                }
                written[std::size_t(s)] = true;
            }
            input_gradients_[i].push_back(g);
        }
    }
    xs_.reserve(widest);
    dxs_.reserve(widest);
}

void ShardPass::add_input(ConstMatrixRef x, std::ptrdiff_t source, int64_t n) {
    if (source < 0) xs_.emplace_back(x.topRows(n));
    else xs_.emplace_back(out_[std::size_t(source)].topRows(n));
}

void ShardPass::forward(ConstMatrixRef x, int64_t n, const StepContext& ctx) {
    for (std::size_t i = 0; i < nodes(); ++i) forward_node(i, x, n, ctx);
}

void ShardPass::forward_node(std::size_t i, ConstMatrixRef x, int64_t n, const StepContext& base) {
    const NetworkLayer& l = network_.layers()[i];
    StepContext ctx = base;
    ctx.random = base.random.derive(l.entry);
    xs_.clear();
    for (const auto s : l.sources) add_input(x, s, n);
    const Clock::time_point start = timing_ ? Clock::now() : Clock::time_point{};
    l.layer->forward_merge(xs_, out_[i].topRows(n), workspace_[i].get(), ctx);
    if (timing_) forward_ms_[i] += elapsed_ms(start, Clock::now());
}

void ShardPass::backward(ConstMatrixRef x, int64_t n, const StepContext& ctx) {
    for (std::size_t i = nodes(); i-- > 0;) backward_node(i, x, n, ctx);
}

void ShardPass::backward_node(std::size_t i, ConstMatrixRef x, int64_t n, const StepContext& base) {
    if (!learns_[i]) return;
    const NetworkLayer& l = network_.layers()[i];
    StepContext ctx = base;
    ctx.random = base.random.derive(l.entry);
    xs_.clear();
    dxs_.clear();
    for (const InputGradient& g : input_gradients_[i]) {
        add_input(x, g.source, n);
        if (g.source < 0) dxs_.emplace_back(no_input_gradient_);
        else if (!g.needed) dxs_.emplace_back(dout_[std::size_t(g.source)].topRows(0));
        else if (g.extra < 0) dxs_.emplace_back(dout_[std::size_t(g.source)].topRows(n));
        else dxs_.emplace_back(extras_[std::size_t(g.extra)].topRows(n));
    }
    const Clock::time_point start = timing_ ? Clock::now() : Clock::time_point{};
    l.layer->backward_merge(xs_, out_[i].topRows(n), dout_[i].topRows(n), dxs_, grads_[i], workspace_[i].get(), ctx);
    for (const InputGradient& g : input_gradients_[i])
        if (g.needed && g.extra >= 0) dout_[std::size_t(g.source)].topRows(n) += extras_[std::size_t(g.extra)].topRows(n);
    if (timing_) backward_ms_[i] += elapsed_ms(start, Clock::now());
}

}  // namespace bp
