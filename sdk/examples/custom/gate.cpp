// gate: a layer reading two inputs, y = a * sigmoid(b) elementwise: the gated linear
// unit (Dauphin et al. 2017), with a and b from two branches of the model. A layer
// reading several inputs derives from bp::MergeLayer and overrides the *_merge
// functions, which take its inputs in the order the entry's `inputs:` lists them.
#include <backplane/backplane.hpp>

namespace {

// sigmoid(b), elementwise: an Eigen expression, evaluated where it is assigned, so
// nothing is allocated (b must outlive it: here, an input of the step).
auto sigmoid(const bp::ConstMatrixRef& b) { return 1 / (1 + (-b.array()).exp()); }

class Gate final : public bp::MergeLayer {
public:
    bp::Shape build_merge(std::span<const bp::Shape> inputs, const bp::Random&) override {
        if (inputs.size() != 2 || inputs[0] != inputs[1])
            throw bp::Error("gate reads two inputs of one shape, values and gates (inputs: [values, gates])");
        return inputs[0];
    }

    void forward_merge(std::span<const bp::ConstMatrixRef> xs, bp::MatrixRef y, bp::Workspace*,
                       const bp::StepContext&) const override {
        y.array() = xs[0].array() * sigmoid(xs[1]);
    }

    // da = dy * sigmoid(b); db = dy * a * sigmoid(b) * (1 - sigmoid(b)). A gradient with
    // 0 rows is not wanted (nothing before that input learns): skip it.
    void backward_merge(std::span<const bp::ConstMatrixRef> xs, bp::ConstMatrixRef, bp::ConstMatrixRef dy,
                        std::span<bp::MatrixRef> dxs, std::span<bp::Matrix>, bp::Workspace*,
                        const bp::StepContext&) const override {
        if (dxs[0].rows() > 0) dxs[0].array() = dy.array() * sigmoid(xs[1]);
        if (dxs[1].rows() > 0) dxs[1].array() = dy.array() * xs[0].array() * sigmoid(xs[1]) * (1 - sigmoid(xs[1]));
    }
};

}  // namespace

void register_gate(bp::Manifest& manifest) {
    // Check cases give every input's shape: `input` is the first, `more_inputs` the rest.
    manifest.layer<Gate>("gate", "values * sigmoid(gates), from two inputs of one shape", bp::Schema(),
                         {{bp::Shape{7}, {}, {bp::Shape{7}}}, {bp::Shape{2, 3, 2}, {}, {bp::Shape{2, 3, 2}}}});
}
