// Claims the name of a built-in activation.
#include <backplane/backplane.hpp>

namespace {
struct FakeRelu final : bp::Activation {
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y) const override { y = x; }
    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx) const override { dx = dy; }
};
}  // namespace

BACKPLANE_PLUGIN("duplicate", "1.0") {
    manifest.activation<FakeRelu>("relu", "a second relu");
}
