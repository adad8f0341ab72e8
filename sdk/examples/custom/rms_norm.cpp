// rms_norm: y = g * x / rms(x), rms(x) = sqrt(mean(x^2) + eps) over each sample's
// features, with a learned per-feature gain g (Zhang & Sennrich 2019).
#include <backplane/backplane.hpp>

#include <cmath>
#include <vector>

namespace {

class RmsNorm final : public bp::Layer {
public:
    static bp::Schema schema() {
        return bp::Schema().number("eps", 1e-6, 1e-12, 1.0, "added to the mean square before the square root");
    }
    explicit RmsNorm(const bp::Params& p) : eps_(float(p.number("eps"))) {}

    bp::Shape build(const bp::Shape& input, const bp::Random&) override {
        params_ = {{"gain", bp::Matrix::Ones(1, input.size()), bp::ParameterRole::norm_gain}};
        return input;
    }
    std::span<bp::NamedTensor> parameters() override { return params_; }

    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext&) const override {
        const auto& g = params_[0].value;
        for (Eigen::Index r = 0; r < x.rows(); ++r) y.row(r) = x.row(r).cwiseProduct(g) / rms(x.row(r));
    }

    // With u = g * dy: dx = u / rms - x * sum(u * x) / (n rms^3); dg = sum over rows of dy * x / rms.
    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix> grads, bp::Workspace*, const bp::StepContext&) const override {
        const auto& g = params_[0].value;
        const float n = float(x.cols());
        grads[0].setZero();
        for (Eigen::Index r = 0; r < x.rows(); ++r) {
            const float s = rms(x.row(r));
            grads[0] += dy.row(r).cwiseProduct(x.row(r)) / s;
            if (dx.rows() == 0) continue;
            const float ux = dy.row(r).cwiseProduct(g).dot(x.row(r));
            dx.row(r) = dy.row(r).cwiseProduct(g) / s - x.row(r) * (ux / (n * s * s * s));
        }
    }

private:
    template <class Row>
    float rms(const Row& row) const { return std::sqrt(row.squaredNorm() / float(row.size()) + eps_); }

    float eps_;
    std::vector<bp::NamedTensor> params_;
};

}  // namespace

void register_rms_norm(bp::Manifest& manifest) {
    manifest.layer<RmsNorm>("rms_norm", "y = gain * x / rms(x), over each sample's features", RmsNorm::schema());
}
