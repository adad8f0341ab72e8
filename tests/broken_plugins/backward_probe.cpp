// Layers that check how the trainer calls backward (tests/test_trainer.cpp).
#include <backplane/backplane.hpp>

#include <vector>

namespace {

// The identity, whose backward must never run: nothing before it learns.
class NoBackward final : public bp::Layer {
public:
    bp::Shape build(const bp::Shape& input, const bp::Random&) override { return input; }
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext&) const override { y = x; }
    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef, bp::MatrixRef, std::span<bp::Matrix>,
                  bp::Workspace*, const bp::StepContext&) const override {
        throw bp::Error("no_backward: backward was called");
    }
};

// y = w x with one learned w; fails unless dx has rows exactly when expect_dx says so.
class ScaleProbe final : public bp::Layer {
public:
    static bp::Schema schema() { return bp::Schema().boolean("expect_dx", true, "whether dx should have rows"); }
    explicit ScaleProbe(const bp::Params& p) : expect_dx_(p.boolean("expect_dx")) {}
    bp::Shape build(const bp::Shape& input, const bp::Random&) override {
        params_ = {{"w", bp::Matrix::Constant(1, 1, 1.5f)}};
        return input;
    }
    std::span<bp::NamedTensor> parameters() override { return params_; }
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext&) const override {
        y = params_[0].value(0, 0) * x;
    }
    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix> grads, bp::Workspace*, const bp::StepContext&) const override {
        if ((dx.rows() > 0) != expect_dx_)
            throw bp::Error(std::string("scale_probe: dx has ") + (dx.rows() > 0 ? "rows" : "0 rows"));
        grads[0](0, 0) = (x.array() * dy.array()).sum();
        if (dx.rows() > 0) dx = params_[0].value(0, 0) * dy;
    }

private:
    bool expect_dx_;
    std::vector<bp::NamedTensor> params_;
};

}  // namespace

BACKPLANE_PLUGIN("backward-probe", "1.0") {
    manifest.layer<NoBackward>("no_backward", "the identity; its backward throws", {});
    manifest.layer<ScaleProbe>("scale_probe", "y = w x; checks whether dx has rows", ScaleProbe::schema());
}
