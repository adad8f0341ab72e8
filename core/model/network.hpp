// A model: the experiment's graph of layers made into components, shapes inferred
// and checked before any training, parameters initialised from the seed.
#pragma once

#include "model/experiment.hpp"

#include <backplane/components.hpp>

#include <memory>
#include <string>
#include <vector>

namespace bp {

// One node of the model, as built.
struct NetworkLayer {
    std::string label;             // the entry's name, or "2.dense": index and component name
    std::size_t entry;             // its index in the model list: keys its random streams
    std::shared_ptr<Layer> layer;
    // What it reads, as positions in layers(); -1 is the network's input.
    std::vector<std::ptrdiff_t> sources;
    std::vector<Shape> inputs;     // the shapes of what it reads
    Shape output;
    bool trainable = true;         // false: its parameters are frozen
    float lr_scale = 1;            // multiplies the learning rate for its parameters
};

class Network {
public:
    // Builds every node in execution order (graph.hpp). A node that rejects its input
    // shapes fails naming its index, its component, each input's shape and producer,
    // and where it stands in the experiment file.
    Network(const std::vector<ModelNode>& model, const Shape& input, uint64_t seed, const Registry& registry);

    // In execution order: each after what it reads; the last is the output.
    const std::vector<NetworkLayer>& layers() const { return layers_; }
    const Shape& input() const { return input_; }
    const Shape& output() const { return layers_.back().output; }
    int64_t parameter_count() const;
    // Whether some node reads other than the node before it.
    bool is_graph() const;

    // The printed table: layer, output shape, parameters (and what each reads, for a graph).
    std::string summary() const;

    // Every parameter tensor with its full name "<label>.<tensor>", in order, with what
    // the optimizer learns of it.
    struct Parameter {
        std::string name;
        Matrix* value;
        const NetworkLayer* node = nullptr;
        ParameterRole role = ParameterRole::weight;
    };
    std::vector<Parameter> parameters() const;
    // Every non-trainable buffer (running statistics), named the same way.
    std::vector<Parameter> buffers() const;

private:
    Shape input_;
    std::vector<NetworkLayer> layers_;
};

// A parameter-free activation used as a layer in a model list.
// On a sequence [T, C] the activation sees one position per row (softmax normalises
// each position's channels).
class ActivationLayer final : public Layer {
public:
    explicit ActivationLayer(std::shared_ptr<const Activation> f) : f_(std::move(f)) {}
    Shape build(const Shape& input, const Random&) override {
        width_ = input.rank() == 2 ? input.dims[1] : input.size();
        return input;
    }
    void forward(ConstMatrixRef x, MatrixRef y, Workspace*, const StepContext&) const override {
        f_->forward(per_position(x, width_), per_position(y, width_));
    }
    void backward(ConstMatrixRef x, ConstMatrixRef y, ConstMatrixRef dy, MatrixRef dx, std::span<Matrix>, Workspace*,
                  const StepContext&) const override {
        if (dx.rows() > 0)
            f_->backward(per_position(x, width_), per_position(y, width_), per_position(dy, width_),
                         per_position(dx, width_));
    }

private:
    std::shared_ptr<const Activation> f_;
    Eigen::Index width_ = 1;
};

// The layer for one model entry: the layer itself, or an activation wrapped as one.
std::shared_ptr<Layer> make_layer(const ComponentConfig& c, const Registry& registry);

}  // namespace bp
