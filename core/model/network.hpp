// A model: the experiment's layer list made into components, shapes inferred and
// checked before any training, parameters initialised from the seed.
#pragma once

#include "model/experiment.hpp"

#include <backplane/components.hpp>

#include <memory>
#include <string>
#include <vector>

namespace bp {

struct NetworkLayer {
    std::string label;             // "2.dense": index and component name
    std::shared_ptr<Layer> layer;
    Shape input, output;
};

class Network {
public:
    // Builds every layer in order. A layer that rejects its input shape fails
    // naming its index, its component and where it stands in the experiment file.
    Network(const std::vector<ComponentConfig>& model, const Shape& input, uint64_t seed, const Registry& registry);

    const std::vector<NetworkLayer>& layers() const { return layers_; }
    const Shape& input() const { return layers_.front().input; }
    const Shape& output() const { return layers_.back().output; }
    int64_t parameter_count() const;

    // The printed table: index, layer, output shape, parameters.
    std::string summary() const;

    // Every parameter tensor with its full name "<index>.<layer>.<tensor>", in order.
    struct Parameter {
        std::string name;
        Matrix* value;
    };
    std::vector<Parameter> parameters() const;
    // Every non-trainable buffer (running statistics), named the same way.
    std::vector<Parameter> buffers() const;

private:
    std::vector<NetworkLayer> layers_;
};

// A parameter-free activation used as a layer in a model list.
class ActivationLayer final : public Layer {
public:
    explicit ActivationLayer(std::shared_ptr<const Activation> f) : f_(std::move(f)) {}
    Shape build(const Shape& input, const Random&) override { return input; }
    void forward(ConstMatrixRef x, MatrixRef y, Workspace*, const StepContext&) const override { f_->forward(x, y); }
    void backward(ConstMatrixRef x, ConstMatrixRef y, ConstMatrixRef dy, MatrixRef dx, std::span<Matrix>, Workspace*,
                  const StepContext&) const override {
        if (dx.rows() > 0) f_->backward(x, y, dy, dx);
    }

private:
    std::shared_ptr<const Activation> f_;
};

// The layer for one model entry: the layer itself, or an activation wrapped as one.
std::shared_ptr<Layer> make_layer(const ComponentConfig& c, const Registry& registry);

}  // namespace bp
