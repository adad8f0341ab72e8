// Loads fine; making its layer throws.
#include <backplane/backplane.hpp>

#include <stdexcept>

namespace {
struct Exploding final : bp::Layer {
    Exploding() { throw std::runtime_error("constructor exploded"); }
    bp::Shape build(const bp::Shape& in, const bp::Random&) override { return in; }
    void forward(bp::ConstMatrixRef, bp::MatrixRef, bp::Workspace*, const bp::StepContext&) const override {}
    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef, bp::MatrixRef, std::span<bp::Matrix>,
                  bp::Workspace*, const bp::StepContext&) const override {}
};
}  // namespace

BACKPLANE_PLUGIN("throwing-factory", "1.0") {
    manifest.layer<Exploding>("exploding", "throws when made", bp::Schema());
}
