// The built-in activations. Each is a row-wise function with its derivative right
// under it; elementwise ones are Eigen array expressions (vectorised, no loop here).
#include <backplane/backplane.hpp>

#include <unsupported/Eigen/SpecialFunctions>

#include <cmath>

namespace {

using bp::ConstMatrixRef;
using bp::MatrixRef;

struct Identity final : bp::Activation {
    void forward(ConstMatrixRef x, MatrixRef y) const override { y = x; }
    void backward(ConstMatrixRef, ConstMatrixRef, ConstMatrixRef dy, MatrixRef dx) const override { dx = dy; }
};

struct Relu final : bp::Activation {
    void forward(ConstMatrixRef x, MatrixRef y) const override { y = x.cwiseMax(0.0f); }
    void backward(ConstMatrixRef x, ConstMatrixRef, ConstMatrixRef dy, MatrixRef dx) const override {
        dx = (x.array() > 0.0f).select(dy, 0.0f);
    }
};

class LeakyRelu final : public bp::Activation {
public:
    static bp::Schema schema() {
        return bp::Schema().number("slope", 0.01, 0.0, 1.0, "gradient for negative inputs");
    }
    explicit LeakyRelu(const bp::Params& p) : slope_(static_cast<float>(p.number("slope"))) {}
    void forward(ConstMatrixRef x, MatrixRef y) const override {
        y = (x.array() > 0.0f).select(x, slope_ * x.array());
    }
    void backward(ConstMatrixRef x, ConstMatrixRef, ConstMatrixRef dy, MatrixRef dx) const override {
        dx = (x.array() > 0.0f).select(dy, slope_ * dy.array());
    }

private:
    float slope_;
};

struct Sigmoid final : bp::Activation {
    void forward(ConstMatrixRef x, MatrixRef y) const override {
        y = (1.0f + (-x.array()).exp()).inverse();
    }
    // dy/dx = y (1 - y)
    void backward(ConstMatrixRef, ConstMatrixRef y, ConstMatrixRef dy, MatrixRef dx) const override {
        dx = dy.array() * y.array() * (1.0f - y.array());
    }
};

struct Tanh final : bp::Activation {
    void forward(ConstMatrixRef x, MatrixRef y) const override { y = x.array().tanh(); }
    // dy/dx = 1 - y^2
    void backward(ConstMatrixRef, ConstMatrixRef y, ConstMatrixRef dy, MatrixRef dx) const override {
        dx = dy.array() * (1.0f - y.array().square());
    }
};

// The exact (erf) GELU, as PyTorch's default: x * Phi(x). Eigen's erf (a rational
// approximation within a few ulp of the float erf) and exp run on whole vectors: the
// scalar std::erf took half of a small transformer's step (perf, char_transformer.yaml).
// tests/test_layers.cpp compares both directions with the formula in double.
struct Gelu final : bp::Activation {
    void forward(ConstMatrixRef x, MatrixRef y) const override {
        y = 0.5f * x.array() * (1.0f + (x.array() * 0.70710678f).erf());
    }
    // dy/dx = Phi(x) + x phi(x)
    void backward(ConstMatrixRef x, ConstMatrixRef, ConstMatrixRef dy, MatrixRef dx) const override {
        const auto v = x.array();
        dx = dy.array() * (0.5f * (1.0f + (v * 0.70710678f).erf()) + v * 0.39894228f * (-0.5f * v.square()).exp());
    }
};

// Across each row: y_j = exp(x_j - max x) / sum_k exp(x_k - max x).
struct Softmax final : bp::Activation {
    void forward(ConstMatrixRef x, MatrixRef y) const override {
        for (Eigen::Index r = 0; r < x.rows(); ++r) {
            y.row(r) = (x.row(r).array() - x.row(r).maxCoeff()).exp();
            y.row(r) /= y.row(r).sum();
        }
    }
    // dx_j = y_j (dy_j - sum_k dy_k y_k)
    void backward(ConstMatrixRef, ConstMatrixRef y, ConstMatrixRef dy, MatrixRef dx) const override {
        for (Eigen::Index r = 0; r < y.rows(); ++r)
            dx.row(r) = y.row(r).array() * (dy.row(r).array() - dy.row(r).dot(y.row(r)));
    }
};

}  // namespace

BACKPLANE_PLUGIN("backplane-activations", "0.1.0") {
    manifest.activation<Identity>("identity", "y = x")
        .activation<Relu>("relu", "y = max(x, 0)")
        .activation<LeakyRelu>("leaky_relu", "y = x for x > 0, slope * x otherwise", LeakyRelu::schema())
        .activation<Sigmoid>("sigmoid", "y = 1 / (1 + exp(-x))")
        .activation<Tanh>("tanh", "y = tanh(x)")
        .activation<Gelu>("gelu", "y = x * Phi(x), Phi the standard normal CDF (exact, erf form)")
        .activation<Softmax>("softmax", "y = exp(x) / sum(exp(x)) across each sample's features");
}
