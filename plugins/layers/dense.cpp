// dense: y = act(x W + b). x is (n, in), W is (in, units), b is (1, units).
// On a sequence [T, C] it acts on each position alike: [T, C] -> [T, units].
#include <backplane/backplane.hpp>

#include <cmath>

#include "gemm.hpp"
#include "layers.hpp"

namespace {

class Dense final : public bp::Layer {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .integer("units", 32, 1, 1 << 24, "number of outputs")
            .activation("activation", "identity", "activation fused into the layer's output")
            .choice("init", "he", {"he", "xavier"}, "weight scale: he = 2/fan_in, xavier = 2/(fan_in + fan_out)")
            .choice("distribution", "normal", {"normal", "uniform"}, "weight distribution with that variance")
            .boolean("bias", true, "add a learned bias");
    }

    Dense(const bp::Params& p, const bp::Services& services)
        : units_(p.integer("units")),
          activation_name_(p.text("activation")),
          activation_(services.activation(activation_name_)),
          xavier_(p.text("init") == "xavier"),
          uniform_(p.text("distribution") == "uniform"),
          bias_(p.boolean("bias")) {}

    bp::Shape build(const bp::Shape& input, const bp::Random& init) override {
        positions_ = input.rank() == 2 ? input.dims[0] : 1;
        const int64_t in = input.size() / positions_;
        if (in <= 0) throw bp::Error("dense needs a non-empty input, got " + input.str());
        params_.clear();
        params_.push_back({"weight", bp::Matrix(in, units_)});
        if (bias_) params_.push_back({"bias", bp::Matrix::Zero(1, units_), bp::ParameterRole::bias});

        const double variance = 2.0 / double(xavier_ ? in + units_ : in);
        bp::Matrix& w = params_[0].value;
        for (Eigen::Index i = 0; i < w.size(); ++i) {
            w.data()[i] = uniform_ ? init.uniform(i, -1.0f, 1.0f) * float(std::sqrt(3.0 * variance))
                                   : float(init.normal(i) * std::sqrt(variance));
        }
        return input.rank() == 2 ? bp::Shape{positions_, units_} : bp::Shape{units_};
    }

    std::span<bp::NamedTensor> parameters() override { return params_; }

    // Pre-activations z and their gradient dz, unless the activation is the identity.
    struct Scratch final : bp::Workspace {
        bp::Matrix z, dz;
    };

    std::unique_ptr<bp::Workspace> make_workspace(int64_t max_rows) const override {
        if (fused()) {
            auto ws = std::make_unique<Scratch>();
            ws->z.resize(max_rows, positions_ * units_);
            ws->dz.resize(max_rows, positions_ * units_);
            return ws;
        }
        return nullptr;
    }

    // The activation sees one position per row (a softmax normalises each position).
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace* ws, const bp::StepContext&) const override {
        if (!fused()) return affine(x, y);
        auto& s = static_cast<Scratch&>(*ws);
        auto z = s.z.topRows(x.rows());
        affine(x, z);
        activation_->forward(bp::per_position(z, units_), bp::per_position(y, units_));
    }

    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef y, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix> grads, bp::Workspace* ws, const bp::StepContext&) const override {
        if (!fused()) return affine_backward(x, dy, dx, grads);
        auto& s = static_cast<Scratch&>(*ws);
        const auto n = x.rows();
        activation_->backward(bp::per_position(s.z.topRows(n), units_), bp::per_position(y, units_),
                              bp::per_position(dy, units_), bp::per_position(s.dz.topRows(n), units_));
        affine_backward(x, s.dz.topRows(n), dx, grads);
    }

private:
    bool fused() const { return activation_name_ != "identity"; }

    // A sequence's positions are rows of their own: (n*T, C) views of the batch.
    void affine(bp::ConstMatrixRef x, bp::MatrixRef z) const {
        if (positions_ > 1) return affine_rows(bp::per_position(x, in()), bp::per_position(z, units_));
        affine_rows(x, z);
    }
    void affine_backward(bp::ConstMatrixRef x, bp::ConstMatrixRef dz, bp::MatrixRef dx,
                         std::span<bp::Matrix> grads) const {
        if (positions_ > 1)
            return affine_backward_rows(bp::per_position(x, in()), bp::per_position(dz, units_),
                                        bp::per_position(dx, in()), grads);
        affine_backward_rows(x, dz, dx, grads);
    }

    void affine_rows(bp::ConstMatrixRef x, bp::MatrixRef z) const {
        gemm(x, false, params_[0].value, false, z);
        if (bias_) z.rowwise() += params_[1].value.row(0);
    }

    // dW = x^T dz, db = sum over rows of dz, dx = dz W^T
    void affine_backward_rows(bp::ConstMatrixRef x, bp::ConstMatrixRef dz, bp::MatrixRef dx,
                              std::span<bp::Matrix> grads) const {
        gemm(x, true, dz, false, grads[0]);
        if (bias_) grads[1] = dz.colwise().sum();
        if (dx.rows() > 0) gemm(dz, false, params_[0].value, true, dx);
    }

    int64_t in() const { return params_[0].value.rows(); }

    int64_t units_;
    std::string activation_name_;
    std::shared_ptr<const bp::Activation> activation_;
    bool xavier_, uniform_, bias_;
    int64_t positions_ = 1;   // T of a sequence input [T, C]
    std::vector<bp::NamedTensor> params_;
};

}  // namespace

void register_dense(bp::Manifest& manifest) {
    manifest.layer<Dense>("dense", "fully connected: y = activation(x W + b), W is (inputs, units)",
                          Dense::schema());
}
