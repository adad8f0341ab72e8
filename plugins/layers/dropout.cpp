// dropout (inverted): in training each element is kept with probability 1 - rate
// and scaled by 1 / (1 - rate); in evaluation it passes through. The mask is a
// pure function of the step's random stream and the element's batch position, so
// it is the same at any thread count and backward regenerates it instead of
// storing it.
#include <backplane/backplane.hpp>

#include "layers.hpp"

namespace {

class Dropout final : public bp::Layer {
public:
    static bp::Schema schema() {
        return bp::Schema().number("rate", 0.5, 0.0, 0.99, "probability of zeroing each element in training");
    }
    explicit Dropout(const bp::Params& p) : rate_(float(p.number("rate"))) {}

    bp::Shape build(const bp::Shape& input, const bp::Random&) override { return input; }

    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext& ctx) const override {
        if (!ctx.training || rate_ == 0.0f) {
            y = x;
            return;
        }
        apply_mask(x, y, ctx);
    }

    // dx = dy * mask / (1 - rate): the same mask as forward.
    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix>, bp::Workspace*, const bp::StepContext& ctx) const override {
        if (dx.rows() == 0) return;
        if (!ctx.training || rate_ == 0.0f) {
            dx = dy;
            return;
        }
        apply_mask(dy, dx, ctx);
    }

private:
    // out = in * mask / (1 - rate), mask drawn at (batch row, column).
    void apply_mask(bp::ConstMatrixRef in, bp::MatrixRef out, const bp::StepContext& ctx) const {
        const float scale = 1.0f / (1.0f - rate_);
        const uint64_t cols = uint64_t(in.cols());
        for (Eigen::Index r = 0; r < in.rows(); ++r) {
            const uint64_t base = uint64_t(ctx.first_row + r) * cols;
            for (Eigen::Index c = 0; c < in.cols(); ++c)
                out(r, c) = ctx.random.uniform(base + uint64_t(c)) < rate_ ? 0.0f : in(r, c) * scale;
        }
    }

    float rate_;
};

}  // namespace

void register_dropout(bp::Manifest& manifest) {
    manifest.layer<Dropout>("dropout", "zeroes each element with probability rate in training (inverted dropout)",
                            Dropout::schema());
}
