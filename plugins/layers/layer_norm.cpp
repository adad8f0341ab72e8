// layer_norm (Ba et al. 2016): normalises each sample's features, or each position's
// channels of a sequence [T, C], by their own mean and variance:
// y = gamma * (x - mean) / sqrt(var + eps) + beta, gamma and beta per feature or channel.
// Nothing is shared across a batch, so training and evaluation compute the same thing.
#include <backplane/backplane.hpp>

#include <cmath>

#include "lane_sums.hpp"
#include "layers.hpp"

namespace {

class LayerNorm final : public bp::Layer {
public:
    static bp::Schema schema() { return bp::Schema().number("eps", 1e-5, 0.0, 1.0, "added to the variance"); }
    explicit LayerNorm(const bp::Params& p) : eps_(float(p.number("eps"))) {}

    bp::Shape build(const bp::Shape& input, const bp::Random&) override {
        if (input.rank() > 2)
            throw bp::Error("layer_norm needs features [F] or a sequence [T, C], got " + input.str() +
                            " (batch_norm normalises images)");
        width_ = input.dims.back();
        size_ = input.size();
        params_ = {{"weight", bp::Matrix::Ones(1, width_), bp::ParameterRole::norm_gain},
                   {"bias", bp::Matrix::Zero(1, width_), bp::ParameterRole::norm_shift}};
        return input;
    }
    std::span<bp::NamedTensor> parameters() override { return params_; }

    struct Scratch final : bp::Workspace {
        bp::Matrix xhat;        // (rows, T*C): normalised input
        Eigen::VectorXf rstd;   // per row and position: 1 / sqrt(var + eps)
        Eigen::RowVectorXf g;   // backward: one position's dy * gamma
    };
    std::unique_ptr<bp::Workspace> make_workspace(int64_t max_rows) const override {
        auto ws = std::make_unique<Scratch>();
        ws->xhat.resize(max_rows, size_);
        ws->rstd.resize(max_rows * (size_ / width_));
        ws->g.resize(width_);
        return ws;
    }

    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace* ws, const bp::StepContext&) const override {
        auto& s = static_cast<Scratch&>(*ws);
        const auto in = bp::per_position(x, width_);
        auto xhat = bp::per_position(s.xhat.topRows(x.rows()), width_);
        auto out = bp::per_position(y, width_);
        const auto& gamma = params_[0].value.row(0).array();
        const auto& beta = params_[1].value.row(0).array();
        for (Eigen::Index p = 0; p < in.rows(); ++p) {
            const double mean = bp::lanes::sum(in.row(p).data(), width_) / double(width_);
            const double var = bp::lanes::squared_deviations(in.row(p).data(), width_, mean) / double(width_);
            s.rstd(p) = float(1.0 / std::sqrt(var + double(eps_)));
            xhat.row(p) = (in.row(p).array() - float(mean)) * s.rstd(p);
            out.row(p) = xhat.row(p).array() * gamma + beta;
        }
    }

    // Per position over its C values: dxhat = dy gamma,
    // dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)); dgamma = sum dy xhat, dbeta = sum dy.
    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix> grads, bp::Workspace* ws, const bp::StepContext&) const override {
        auto& s = static_cast<Scratch&>(*ws);
        const auto xhat = bp::per_position(s.xhat.topRows(x.rows()), width_);
        const auto d = bp::per_position(dy, width_);
        grads[0] = (d.array() * xhat.array()).colwise().sum();
        grads[1] = d.colwise().sum();
        if (dx.rows() == 0) return;
        auto out = bp::per_position(dx, width_);
        const auto& gamma = params_[0].value.row(0).array();
        auto g = s.g.array();
        for (Eigen::Index p = 0; p < d.rows(); ++p) {
            g = d.row(p).array() * gamma;
            const float mean_g = g.mean(), mean_gx = (g * xhat.row(p).array()).mean();
            out.row(p) = s.rstd(p) * (g - mean_g - xhat.row(p).array() * mean_gx);
        }
    }

private:
    float eps_;
    int64_t width_ = 0, size_ = 0;   // C (or F), and T*C
    std::vector<bp::NamedTensor> params_;
};

}  // namespace

void register_layer_norm(bp::Manifest& manifest) {
    manifest.layer<LayerNorm>("layer_norm", "normalise each sample's features, or each position's channels, by their own statistics",
                              LayerNorm::schema(), {{bp::Shape{6}}, {bp::Shape{3, 5}}});
}
