// The component interfaces: what a layer, an activation, a loss, an optimizer and a
// dataset must do. Everything here crosses the plugin boundary: any change to a
// virtual function or a struct bumps BACKPLANE_ABI_VERSION (plugin.hpp).
#pragma once

#include "backplane/error.hpp"
#include "backplane/metrics.hpp"
#include "backplane/params.hpp"
#include "backplane/random.hpp"
#include "backplane/tensor.hpp"

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace bp {

// ---------------------------------------------------------------- activation
// A parameter-free function applied to each row: elementwise (relu) or across the
// row (softmax). Usable as a layer in a model list or fused into a layer.
class BACKPLANE_API Activation {
public:
    virtual ~Activation() = default;
    // x, y: (n, features). y must not alias x.
    virtual void forward(ConstMatrixRef x, MatrixRef y) const = 0;
    // dx = dL/dx from dy = dL/dy, given x and y = f(x) from forward; all (n, features).
    virtual void backward(ConstMatrixRef x, ConstMatrixRef y, ConstMatrixRef dy, MatrixRef dx) const = 0;
};

// What the core offers a factory: other components by name.
class BACKPLANE_API Services {
public:
    virtual ~Services() = default;
    // An activation by registry name (e.g. for a dense layer's fused activation).
    virtual std::shared_ptr<const Activation> activation(const std::string& name) const = 0;
};

// -------------------------------------------------------------------- layer
// Scratch memory one shard's forward leaves for its backward (pre-activations,
// masks, im2col buffers). The core makes one per layer per shard, once, so layers
// allocate nothing in a step.
struct BACKPLANE_API Workspace {
    virtual ~Workspace() = default;
    // What Layer::end_step reads from this shard: numbers in one block whose size is
    // fixed when the workspace is made. Over several processes (MPI) each shard runs in
    // one of them; before end_step the core copies this block of every shard into the
    // same shard's workspace in every other process. So a layer with an end_step keeps
    // all it reads there in this block (empty: it reads nothing).
    virtual std::span<double> step_statistics() { return {}; }
};

// What a step tells a layer besides its data.
struct StepContext {
    bool training = true;     // false in evaluation: dropout off, running statistics used
    Random random{0};         // keyed by (seed, epoch, step, layer): index it by batch row
    int64_t first_row = 0;    // batch row of this shard's first row
};

// A layer owns its parameters and is read-only during a step: everything per-batch
// lives in the Workspace, so shards run it concurrently without locks.
//
// Most layers read one input and override the one-input functions: build, forward,
// backward. A layer reading several (add, concat) derives from MergeLayer below and
// overrides their several-input forms instead. The core calls only the several-input
// forms; for a one-input layer they hand over its single input.
class BACKPLANE_API Layer {
public:
    virtual ~Layer() = default;

    // Called once at network assembly. Checks the per-sample input shape (throw
    // bp::Error saying what is expected), creates and initialises the parameters
    // from `init`, and returns the per-sample output shape.
    virtual Shape build(const Shape& input, const Random& init) = 0;

    // The trainable tensors, in a fixed order. Gradients use the same order and shapes.
    virtual std::span<NamedTensor> parameters() { return {}; }

    // Scratch for at most max_rows rows; nullptr when forward keeps nothing.
    virtual std::unique_ptr<Workspace> make_workspace(int64_t /*max_rows*/) const { return nullptr; }

    // Non-trainable state saved with the model (batch norm's running statistics).
    virtual std::span<NamedTensor> buffers() { return {}; }

    // x: (n, input.size()), y: (n, output.size()), both sized by the core.
    virtual void forward(ConstMatrixRef x, MatrixRef y, Workspace* ws, const StepContext& ctx) const = 0;

    // From dy = dL/dy, writes dx = dL/dx and overwrites grads[i] = dL/dparameters()[i]
    // (summed over the n rows). dx has 0 rows when no one needs it (no layer before has parameters).
    virtual void backward(ConstMatrixRef x, ConstMatrixRef y, ConstMatrixRef dy, MatrixRef dx,
                          std::span<Matrix> grads, Workspace* ws, const StepContext& ctx) const = 0;

    // After every shard of a training step ran, on one thread: the step's workspaces,
    // in shard order, so a layer can fold what its shards saw into its buffers
    // (running statistics) in an order that never depends on threads. It reads only
    // each workspace's step_statistics(): in a process that did not run a shard, that
    // is all its workspace holds.
    virtual void end_step(std::span<Workspace* const> /*shards*/) {}

    // The several-input forms, what the core calls: inputs in the order the model lists
    // them. The defaults take exactly one input and pass it to the functions above.
    virtual Shape build_merge(std::span<const Shape> inputs, const Random& init) {
        if (inputs.size() != 1)
            throw Error("takes one input, but the model gives it " + std::to_string(inputs.size()) +
                        " (a layer reading several derives from bp::MergeLayer)");
        return build(inputs[0], init);
    }
    virtual void forward_merge(std::span<const ConstMatrixRef> xs, MatrixRef y, Workspace* ws,
                               const StepContext& ctx) const {
        forward(xs[0], y, ws, ctx);
    }
    // dxs[k] = dL/dxs[k]; a dxs[k] with 0 rows is not needed (nothing before that input learns).
    virtual void backward_merge(std::span<const ConstMatrixRef> xs, ConstMatrixRef y, ConstMatrixRef dy,
                                std::span<MatrixRef> dxs, std::span<Matrix> grads, Workspace* ws,
                                const StepContext& ctx) const {
        backward(xs[0], y, dy, dxs[0], grads, ws, ctx);
    }
};

// A layer reading two or more inputs: overrides build_merge, forward_merge and
// backward_merge (and parameters, make_workspace... as any layer). Its backward_merge
// writes a gradient for each input that has rows.
class BACKPLANE_API MergeLayer : public Layer {
public:
    Shape build(const Shape&, const Random&) final { throw Error(one_input); }
    void forward(ConstMatrixRef, MatrixRef, Workspace*, const StepContext&) const final { throw Error(one_input); }
    void backward(ConstMatrixRef, ConstMatrixRef, ConstMatrixRef, MatrixRef, std::span<Matrix>, Workspace*,
                  const StepContext&) const final {
        throw Error(one_input);
    }
    Shape build_merge(std::span<const Shape> inputs, const Random& init) override = 0;
    void forward_merge(std::span<const ConstMatrixRef> xs, MatrixRef y, Workspace* ws,
                       const StepContext& ctx) const override = 0;
    void backward_merge(std::span<const ConstMatrixRef> xs, ConstMatrixRef y, ConstMatrixRef dy,
                        std::span<MatrixRef> dxs, std::span<Matrix> grads, Workspace* ws,
                        const StepContext& ctx) const override = 0;

private:
    static constexpr const char* one_input = "a merge layer reads its inputs through the *_merge functions";
};

// --------------------------------------------------------------------- loss
// What a dataset's targets are: `columns` per sample; `classes` > 0 for
// classification, where each column holds a class index 0..classes-1: one column for
// a label per sample, T columns for a label per position of a sequence (the model then
// outputs [T, classes]: a language model's next-token targets).
struct TargetInfo {
    int64_t columns = 1;
    int64_t classes = 0;
};

class BACKPLANE_API Loss {
public:
    virtual ~Loss() = default;
    // Throws bp::Error when predictions of this per-sample shape cannot be scored
    // against these targets, saying what the model's output must be.
    virtual void check(const Shape& prediction, const TargetInfo& targets) const = 0;
    // Returns the sum over rows of the per-sample loss. When dpred has rows, writes
    // dpred = scale * d(sum)/d(pred). pred, dpred: (n, outputs); target: (n, columns).
    virtual double evaluate(ConstMatrixRef pred, ConstMatrixRef target, MatrixRef dpred, float scale) const = 0;
    // Predictions right, one per target column (a sample's label, a sequence's
    // positions, a multi-label output): the core divides by rows x columns. -1 when
    // accuracy means nothing (regression).
    virtual int64_t count_correct(ConstMatrixRef /*pred*/, ConstMatrixRef /*target*/) const { return -1; }
};

// ---------------------------------------------------------------- optimizer
// One trainable tensor as the optimizer sees it. Frozen ones (`trainable: false`) are
// not passed at all.
struct ParameterRef {
    const std::string& name;   // "<index>.<layer>.<tensor>" ("0.dense.weight"), or "<entry name>.<tensor>"
    MatrixRef value;
    ConstMatrixRef grad;       // averaged over the batch
    const std::string& node;   // the model entry it belongs to: its label ("0.dense", "stage2.block1.conv_a")
    ParameterRole role;        // from its layer: weight, bias, norm gain or shift, ...
    float lr_scale;            // the entry's lr_scale (1 unless set): multiply the learning rate by it
};

class BACKPLANE_API Optimizer {
public:
    virtual ~Optimizer() = default;
    // One update. The parameter list is the same, in the same order, at every call.
    virtual void step(std::span<ParameterRef> params) = 0;
    virtual double learning_rate() const = 0;
    virtual void set_learning_rate(double lr) = 0;
    // Per-parameter state (moments, step count) for checkpoints; load_state
    // accepts exactly what state() returned.
    virtual std::vector<NamedTensor> state() const { return {}; }
    virtual void load_state(const std::vector<NamedTensor>& /*state*/) {}
};

// ----------------------------------------------------------------- schedule
// The learning rate of each epoch, from the optimizer's own `lr` (the base). A pure
// function of its arguments, the results of the epochs before included, so a
// resumed run (which keeps its history) needs no schedule state.
class BACKPLANE_API Schedule {
public:
    virtual ~Schedule() = default;
    // epoch: 1..epochs; history: epochs 1..epoch-1. Throws bp::Error when a metric
    // it needs is NaN in the history (the run does not produce it). The core calls it
    // once before training with a one-epoch history holding the metrics the run will
    // have (0) and will not (NaN), so such a mistake is found before any file is written.
    virtual double learning_rate(double base, int64_t epoch, int64_t epochs,
                                 std::span<const EpochMetrics> history) const = 0;
};

// ------------------------------------------------------------------ dataset
struct Split {
    Matrix x;   // (samples, input.size())
    Matrix y;   // (samples, target.columns)
};

struct Data {
    Shape input;
    TargetInfo target;
    Split train;
    std::optional<Split> test;
    // Held out by the dataset itself (a text's windows by position, so that no
    // validation window overlaps a training one); the experiment's validation_split
    // must then be 0.
    std::optional<Split> validation;
};

struct DataContext {
    uint64_t seed = 0;          // the experiment's seed, for synthetic data
    std::string base_dir;       // the experiment file's folder: relative paths start here
};

class BACKPLANE_API Dataset {
public:
    virtual ~Dataset() = default;
    virtual Data load(const DataContext& ctx) const = 0;
};

}  // namespace bp
