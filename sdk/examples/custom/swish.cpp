// swish: y = x * sigmoid(beta * x) (Ramachandran et al. 2017).
#include <backplane/backplane.hpp>

namespace {

class Swish final : public bp::Activation {
public:
    static bp::Schema schema() {
        return bp::Schema().number("beta", 1.0, 0.0, 100.0, "sharpness of the gate");
    }
    explicit Swish(const bp::Params& p) : beta_(float(p.number("beta"))) {}

    // x, y: (n, features)
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y) const override {
        y = x.array() * (1.0f + (-beta_ * x.array()).exp()).inverse();
    }
    // dy/dx = s + beta x s (1 - s), s = sigmoid(beta x)
    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx) const override {
        const auto s = (1.0f + (-beta_ * x.array()).exp()).inverse();
        dx = dy.array() * (s + beta_ * x.array() * s * (1.0f - s));
    }

private:
    float beta_;
};

}  // namespace

void register_swish(bp::Manifest& manifest) {
    manifest.activation<Swish>("swish", "y = x * sigmoid(beta * x)", Swish::schema());
}
