// Merge layers: a node reading two or more nodes (a residual's skip, a branch's join).
//   add:      y = sum_k x_k, or sum_k a_k x_k with a learned scale a_k per input
//   concat:   the inputs side by side along the first dimension (an image's channels,
//             a vector's features)
//   multiply: y = prod_k x_k, elementwise (gates)
#include <backplane/backplane.hpp>

#include "layers.hpp"

namespace {

// The inputs must all have the first one's shape.
void require_same_shapes(std::span<const bp::Shape> inputs, const char* layer) {
    if (inputs.size() < 2)
        throw bp::Error(std::string(layer) + " merges two or more inputs; give them in the entry's inputs: [a, b]");
    for (std::size_t k = 1; k < inputs.size(); ++k)
        if (inputs[k] != inputs[0])
            throw bp::Error(std::string(layer) + " needs inputs of one shape, but input " + std::to_string(k + 1) +
                            " is " + inputs[k].str() + " and input 1 is " + inputs[0].str());
}

class Add final : public bp::MergeLayer {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .boolean("learn_scale", false, "learn a scale per input: y = sum_k a_k x_k")
            .number("scale_init", 1.0, -100.0, 100.0,
                    "the scales' first value, for every input but the first (0: SkipInit's residual branch)");
    }
    explicit Add(const bp::Params& p) : learn_(p.boolean("learn_scale")), init_(float(p.number("scale_init"))) {}

    bp::Shape build_merge(std::span<const bp::Shape> inputs, const bp::Random&) override {
        require_same_shapes(inputs, "add");
        if (learn_) {
            bp::Matrix scale = bp::Matrix::Constant(1, Eigen::Index(inputs.size()), init_);
            scale(0, 0) = 1;
            params_ = {{"scale", scale, bp::ParameterRole::other}};
        }
        return inputs[0];
    }
    std::span<bp::NamedTensor> parameters() override { return params_; }

    void forward_merge(std::span<const bp::ConstMatrixRef> xs, bp::MatrixRef y, bp::Workspace*,
                       const bp::StepContext&) const override {
        y = scale(0) * xs[0];
        for (std::size_t k = 1; k < xs.size(); ++k) y += scale(k) * xs[k];
    }
    void backward_merge(std::span<const bp::ConstMatrixRef> xs, bp::ConstMatrixRef, bp::ConstMatrixRef dy,
                        std::span<bp::MatrixRef> dxs, std::span<bp::Matrix> grads, bp::Workspace*,
                        const bp::StepContext&) const override {
        for (std::size_t k = 0; k < xs.size(); ++k) {
            if (dxs[k].rows() > 0) dxs[k] = scale(k) * dy;
            if (learn_) grads[0](0, Eigen::Index(k)) = (dy.array() * xs[k].array()).sum();
        }
    }

private:
    float scale(std::size_t k) const { return learn_ ? params_[0].value(0, Eigen::Index(k)) : 1.0f; }

    bool learn_;
    float init_;
    std::vector<bp::NamedTensor> params_;
};

class Concat final : public bp::MergeLayer {
public:
    bp::Shape build_merge(std::span<const bp::Shape> inputs, const bp::Random&) override {
        if (inputs.size() < 2)
            throw bp::Error("concat joins two or more inputs; give them in the entry's inputs: [a, b]");
        bp::Shape out = inputs[0];
        for (std::size_t k = 1; k < inputs.size(); ++k) {
            const auto& d = inputs[k].dims;
            if (d.size() != out.rank() || !std::equal(d.begin() + 1, d.end(), out.dims.begin() + 1))
                throw bp::Error("concat joins along the first dimension (an image's channels), so the others must "
                                "match, but input " + std::to_string(k + 1) + " is " + inputs[k].str() +
                                " and input 1 is " + inputs[0].str());
            out.dims[0] += d[0];
        }
        return out;
    }
    // The first dimension is outermost: each input is a run of columns of y.
    void forward_merge(std::span<const bp::ConstMatrixRef> xs, bp::MatrixRef y, bp::Workspace*,
                       const bp::StepContext&) const override {
        Eigen::Index at = 0;
        for (const auto& x : xs) {
            y.middleCols(at, x.cols()) = x;
            at += x.cols();
        }
    }
    void backward_merge(std::span<const bp::ConstMatrixRef> xs, bp::ConstMatrixRef, bp::ConstMatrixRef dy,
                        std::span<bp::MatrixRef> dxs, std::span<bp::Matrix>, bp::Workspace*,
                        const bp::StepContext&) const override {
        Eigen::Index at = 0;
        for (std::size_t k = 0; k < xs.size(); ++k) {
            if (dxs[k].rows() > 0) dxs[k] = dy.middleCols(at, xs[k].cols());
            at += xs[k].cols();
        }
    }
};

class Multiply final : public bp::MergeLayer {
public:
    bp::Shape build_merge(std::span<const bp::Shape> inputs, const bp::Random&) override {
        require_same_shapes(inputs, "multiply");
        return inputs[0];
    }
    void forward_merge(std::span<const bp::ConstMatrixRef> xs, bp::MatrixRef y, bp::Workspace*,
                       const bp::StepContext&) const override {
        y = xs[0];
        for (std::size_t k = 1; k < xs.size(); ++k) y.array() *= xs[k].array();
    }
    // dL/dx_k = dy times the product of the other inputs (no division: an input may be 0).
    void backward_merge(std::span<const bp::ConstMatrixRef> xs, bp::ConstMatrixRef, bp::ConstMatrixRef dy,
                        std::span<bp::MatrixRef> dxs, std::span<bp::Matrix>, bp::Workspace*,
                        const bp::StepContext&) const override {
        for (std::size_t k = 0; k < xs.size(); ++k) {
            if (dxs[k].rows() == 0) continue;
            dxs[k] = dy;
            for (std::size_t j = 0; j < xs.size(); ++j)
                if (j != k) dxs[k].array() *= xs[j].array();
        }
    }
};

}  // namespace

void register_merge_layers(bp::Manifest& manifest) {
    using bp::Shape;
    manifest.layer<Add>("add", "the elementwise sum of its inputs (a residual connection), optionally scaled",
                        Add::schema(),
                        {{Shape{7}, {}, {Shape{7}}}, {Shape{2, 3, 2}, {}, {Shape{2, 3, 2}, Shape{2, 3, 2}}}});
    manifest.layer<Concat>("concat", "its inputs joined along the first dimension: an image's channels, a vector's "
                                     "features",
                           bp::Schema(), {{Shape{3}, {}, {Shape{4}}}, {Shape{2, 2, 3}, {}, {Shape{1, 2, 3}}}});
    manifest.layer<Multiply>("multiply", "the elementwise product of its inputs (a gate)", bp::Schema(),
                             {{Shape{7}, {}, {Shape{7}}}, {Shape{2, 3}, {}, {Shape{2, 3}, Shape{2, 3}}}});
}
