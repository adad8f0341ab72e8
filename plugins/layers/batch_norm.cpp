// batch_norm: per feature (dense inputs [F]) or per channel (images [C, H, W]),
// y = gamma * (x - mean) / sqrt(var + eps) + beta.
//
// Training normalises with the statistics of the shard (train.shard_size rows):
// "ghost" batch norm (Hoffer et al. 2017), which keeps every shard independent and
// the result the same at any thread count. The running statistics follow the whole
// batch's mean and variance, combined from the shards in order in end_step; they
// are what evaluation uses, and they are saved with the model.
#include <backplane/backplane.hpp>

#include <cmath>

#include "lane_sums.hpp"
#include "layers.hpp"

namespace {

// The `area` values of channel c in row r: contiguous, channel-major.
template <class M>
auto channel(M&& m, int64_t r, int64_t c, int64_t area) {
    return m.row(r).segment(c * area, area);
}

// (x - mean) * rstd over those values: batch norm's normalised input, which backward
// computes again rather than forward keeping it (the same float operations give the
// same bits). Kept, it cost forward a write of the whole shard, and its memory.
auto normalised(const bp::ConstMatrixRef& x, int64_t r, int64_t c, int64_t area, float mean, float rstd) {
    return (channel(x, r, c, area).array() - mean) * rstd;
}

// Where those values start.
const float* channel_data(bp::ConstMatrixRef m, int64_t r, int64_t c, int64_t area) {
    return m.data() + r * m.outerStride() + c * area;
}

class BatchNorm final : public bp::Layer {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .number("momentum", 0.1, 0.0, 1.0, "weight of each batch in the running statistics")
            .number("eps", 1e-5, 0.0, 1.0, "added to the variance");
    }
    explicit BatchNorm(const bp::Params& p) : momentum_(p.number("momentum")), eps_(float(p.number("eps"))) {}

    bp::Shape build(const bp::Shape& input, const bp::Random&) override {
        channels_ = input.rank() == 3 ? input.dims[0] : input.size();
        area_ = input.size() / channels_;
        params_ = {{"weight", bp::Matrix::Ones(1, channels_), bp::ParameterRole::norm_gain},
                   {"bias", bp::Matrix::Zero(1, channels_), bp::ParameterRole::norm_shift}};
        buffers_ = {{"running_mean", bp::Matrix::Zero(1, channels_)}, {"running_var", bp::Matrix::Ones(1, channels_)}};
        return input;
    }
    std::span<bp::NamedTensor> parameters() override { return params_; }
    std::span<bp::NamedTensor> buffers() override { return buffers_; }

    // What end_step reads lives in `statistics`: [mean per channel, variance per
    // channel, values per channel], so another process can be handed it.
    struct Stats final : bp::Workspace {
        explicit Stats(int64_t channels)
            : statistics(Eigen::ArrayXd::Zero(2 * channels + 1)),
              mean(statistics.data(), channels),
              var(statistics.data() + channels, channels),
              count(statistics(2 * channels)) {}
        std::span<double> step_statistics() override { return {statistics.data(), std::size_t(statistics.size())}; }
        Eigen::ArrayXd statistics;
        Eigen::Map<Eigen::ArrayXd> mean, var;    // per channel, this shard (biased variance)
        double& count;                           // values per channel in this shard
        Eigen::ArrayXf rstd;                     // 1 / sqrt(var + eps)
        Eigen::ArrayXd sum, sum2;                // per channel: forward's of x and of (x - mean)^2, backward's of dy and of dy xhat
    };
    std::unique_ptr<bp::Workspace> make_workspace(int64_t) const override {
        auto ws = std::make_unique<Stats>(channels_);
        ws->rstd.resize(channels_);
        ws->sum.resize(channels_);
        ws->sum2.resize(channels_);
        return ws;
    }

    // Every pass goes row by row, each row's channels in turn: the order the shard lies
    // in memory. Channel by channel (each pass reading channel c of every row) took
    // 1.4-1.5x the time forward and 1.7-1.9x backward in the Fashion CNN (run --profile,
    // 2026-12-06). Each channel's sums add the rows in the same order either way.
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace* ws, const bp::StepContext& ctx) const override {
        auto& s = static_cast<Stats&>(*ws);
        const int64_t n = x.rows();
        if (ctx.training) {
            s.count = double(n * area_);
            s.sum.setZero();
            s.sum2.setZero();
            for (int64_t r = 0; r < n; ++r)
                for (int64_t c = 0; c < channels_; ++c) s.sum(c) += bp::lanes::sum(channel_data(x, r, c, area_), area_);
            s.mean = s.sum / s.count;
            for (int64_t r = 0; r < n; ++r)
                for (int64_t c = 0; c < channels_; ++c)
                    s.sum2(c) += bp::lanes::squared_deviations(channel_data(x, r, c, area_), area_, s.mean(c));
            s.var = s.sum2 / s.count;
            s.rstd = (1.0 / (s.var + double(eps_)).sqrt()).cast<float>();
        } else {
            running_rstd(s.rstd);
        }
        const auto& gamma = params_[0].value;
        const auto& beta = params_[1].value;
        for (int64_t r = 0; r < n; ++r)
            for (int64_t c = 0; c < channels_; ++c)
                channel(y, r, c, area_) =
                    normalised(x, r, c, area_, mean(s, c, ctx), s.rstd(c)) * gamma(0, c) + beta(0, c);
    }

    // Training: dx = gamma rstd / m (m dy - sum dy - xhat sum(dy xhat)), per channel over m values.
    // Evaluation: dx = gamma rstd dy. Both: dgamma = sum dy xhat, dbeta = sum dy.
    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix> grads, bp::Workspace* ws, const bp::StepContext& ctx) const override {
        auto& s = static_cast<Stats&>(*ws);
        const int64_t n = dy.rows();
        const auto& gamma = params_[0].value;
        if (!ctx.training) running_rstd(s.rstd);   // as forward had it
        s.sum.setZero();
        s.sum2.setZero();
        for (int64_t r = 0; r < n; ++r)
            for (int64_t c = 0; c < channels_; ++c) {
                const float* g = channel_data(dy, r, c, area_);
                const float* v = channel_data(x, r, c, area_);
                const float mu = mean(s, c, ctx), rstd = s.rstd(c);
                s.sum(c) += bp::lanes::sum(g, area_);
                s.sum2(c) += bp::lanes::sum_terms(area_, [&](int64_t i) {
                    const float xhat = (v[i] - mu) * rstd;   // as normalised computes it
                    return double(g[i]) * double(xhat);
                });
            }
        grads[0] = s.sum2.cast<float>().transpose().matrix();
        grads[1] = s.sum.cast<float>().transpose().matrix();
        if (dx.rows() == 0) return;
        const float m = float(s.count);
        for (int64_t r = 0; r < n; ++r)
            for (int64_t c = 0; c < channels_; ++c) {
                if (!ctx.training) {
                    channel(dx, r, c, area_) = channel(dy, r, c, area_) * (gamma(0, c) * s.rstd(c));
                    continue;
                }
                const float k = gamma(0, c) * s.rstd(c) / m;
                const float sum_dy = float(s.sum(c)), sum_dy_xhat = float(s.sum2(c));
                const auto xhat = normalised(x, r, c, area_, mean(s, c, ctx), s.rstd(c));
                channel(dx, r, c, area_) =
                    k * (m * channel(dy, r, c, area_).array() - sum_dy - xhat * sum_dy_xhat).matrix();
            }
    }

    // The batch's mean and variance from its shards' (Chan et al.'s pairwise
    // combination, in shard order), then running = (1 - momentum) running + momentum batch,
    // with the unbiased batch variance, as PyTorch.
    void end_step(std::span<bp::Workspace* const> shards) override {
        for (int64_t c = 0; c < channels_; ++c) {
            double count = 0, mean = 0, m2 = 0;
            for (auto* w : shards) {
                const auto& s = static_cast<const Stats&>(*w);
                const double nb = s.count, delta = s.mean(c) - mean;
                const double total = count + nb;
                mean += delta * nb / total;
                m2 += s.var(c) * nb + delta * delta * count * nb / total;
                count = total;
            }
            const double unbiased = count > 1 ? m2 / (count - 1) : m2;
            float& rm = buffers_[0].value(0, c);
            float& rv = buffers_[1].value(0, c);
            rm = float((1.0 - momentum_) * rm + momentum_ * mean);
            rv = float((1.0 - momentum_) * rv + momentum_ * unbiased);
        }
    }

private:
    // The mean x is normalised by: the shard's in training, the running one in evaluation.
    float mean(const Stats& s, int64_t c, const bp::StepContext& ctx) const {
        return ctx.training ? float(s.mean(c)) : buffers_[0].value(0, c);
    }

    // Evaluation's 1 / sqrt(running variance + eps), per channel, into `rstd` (sized).
    void running_rstd(Eigen::ArrayXf& rstd) const {
        rstd = (buffers_[1].value.row(0).array() + eps_).sqrt().inverse().transpose();
    }

    double momentum_;
    float eps_;
    int64_t channels_ = 0, area_ = 1;
    std::vector<bp::NamedTensor> params_, buffers_;
};

}  // namespace

void register_batch_norm(bp::Manifest& manifest) {
    manifest.layer<BatchNorm>("batch_norm",
                              "normalise each feature or channel by its shard statistics (running ones in evaluation)",
                              BatchNorm::schema(), {{bp::Shape{5}}, {bp::Shape{3, 2, 3}}});
}
