// One shard's forward and backward pass through the network's graph, into buffers
// sized once: a step allocates nothing.
//
// Backward visits the nodes in reverse execution order. A node's first reader in that
// order writes its output gradient; each later reader writes into a buffer of its own,
// which is then added, so where a node feeds several (a residual's skip) the gradients
// are summed in one fixed order and the bits never depend on threads. Backward skips
// every node with nothing that learns at or before it (a leading flatten, a frozen
// stem), and asks no node for the gradient of an input nothing before learns from.
#pragma once

#include "model/network.hpp"
#include "train/timeline.hpp"

#include <backplane/components.hpp>

#include <memory>
#include <vector>

namespace bp {

class ShardPass {
public:
    ShardPass(const Network& network, int64_t rows);

    // Runs every node on the first n rows of x. ctx.random is the step's stream; node
    // i gets ctx.random.derive(its model entry).
    void forward(ConstMatrixRef x, int64_t n, const StepContext& ctx);
    // The network's output of the last forward, and where the caller puts dL/doutput.
    ConstMatrixRef output(int64_t n) const { return out_.back().topRows(n); }
    MatrixRef output_gradient(int64_t n) { return dout_.back().topRows(n); }
    // From output_gradient, fills grads() with dL/dparameters for the same x and n.
    void backward(ConstMatrixRef x, int64_t n, const StepContext& ctx);
    // The same a node at a time: forward in node order, backward in reverse, each after
    // the nodes it reads. A shard's step can move between threads at these boundaries.
    std::size_t nodes() const { return out_.size(); }
    void forward_node(std::size_t i, ConstMatrixRef x, int64_t n, const StepContext& ctx);
    void backward_node(std::size_t i, ConstMatrixRef x, int64_t n, const StepContext& ctx);

    // Per node, per parameter: summed over the shard's rows.
    std::vector<std::vector<Matrix>>& grads() { return grads_; }
    Workspace* workspace(std::size_t node) const { return workspace_[node].get(); }

    // With timing on (--profile's training steps, never evaluation), forward and backward
    // add each node's milliseconds to these, per node; the caller reads and clears them.
    void time_nodes(bool on) {
        if (on && forward_ms_.empty()) {   // once, before the steps: no allocation in one
            forward_ms_.assign(out_.size(), 0.0);
            backward_ms_.assign(out_.size(), 0.0);
        }
        timing_ = on;
    }
    std::vector<double>& forward_ms() { return forward_ms_; }
    std::vector<double>& backward_ms() { return backward_ms_; }

private:
    // Where backward writes the gradient for input k of a node.
    struct InputGradient {
        std::ptrdiff_t source;   // the node read (-1: the network input)
        bool needed;             // something at or before `source` learns
        int extra;               // -1: straight into dout_[source]; else extras_[extra], added after
    };

    // Appends the view of what `source` holds (x for -1) to xs_.
    void add_input(ConstMatrixRef x, std::ptrdiff_t source, int64_t n);

    const Network& network_;
    std::vector<Matrix> out_, dout_;                     // per node: output, dL/doutput
    std::vector<std::unique_ptr<Workspace>> workspace_;  // per node
    std::vector<std::vector<Matrix>> grads_;             // per node, per parameter
    std::vector<bool> learns_;                           // per node: it or a node before it has trainable parameters
    std::vector<std::vector<InputGradient>> input_gradients_;   // per node, per input
    std::vector<Matrix> extras_;
    Matrix no_input_gradient_;                           // 0 rows: nothing learns from the input
    // The views handed to a node, rebuilt in place (reserved: no allocation in a step).
    std::vector<ConstMatrixRef> xs_;
    std::vector<MatrixRef> dxs_;
    std::vector<double> forward_ms_, backward_ms_;       // per node, once time_nodes(true) was called
    bool timing_ = false;
};

}  // namespace bp
