// flatten: a sample of any shape becomes a vector. Rows already hold samples
// flattened, so only the shape changes; forward and backward copy.
#include <backplane/backplane.hpp>

#include "layers.hpp"

namespace {

struct Flatten final : bp::Layer {
    bp::Shape build(const bp::Shape& input, const bp::Random&) override { return bp::Shape{input.size()}; }
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext&) const override { y = x; }
    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix>, bp::Workspace*, const bp::StepContext&) const override {
        if (dx.rows() > 0) dx = dy;
    }
};

}  // namespace

void register_reshaping_layers(bp::Manifest& manifest) {
    manifest.layer<Flatten>("flatten", "a sample of any shape [C, H, W] becomes [C*H*W]", bp::Schema(),
                            {{bp::Shape{2, 3, 2}}});
}
