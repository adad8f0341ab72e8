// Components written from the docs with one planted bug each, of the kinds that
// check-plugin once let through: each passes a check at initial parameters, in one
// shard, or run by one thread, and must still fail.
#include <backplane/backplane.hpp>

#include <cmath>
#include <vector>

namespace {

// rms_norm whose backward forgets the gain in dx. At initialisation the gain is 1 and
// the mistake cannot be seen.
class GainlessNorm final : public bp::Layer {
public:
    bp::Shape build(const bp::Shape& input, const bp::Random&) override {
        params_ = {{"gain", bp::Matrix::Ones(1, input.size())}};
        return input;
    }
    std::span<bp::NamedTensor> parameters() override { return params_; }
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext&) const override {
        for (Eigen::Index r = 0; r < x.rows(); ++r) y.row(r) = x.row(r).cwiseProduct(params_[0].value) / rms(x.row(r));
    }
    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix> grads, bp::Workspace*, const bp::StepContext&) const override {
        const float n = float(x.cols());
        grads[0].setZero();
        for (Eigen::Index r = 0; r < x.rows(); ++r) {
            const float s = rms(x.row(r));
            grads[0] += dy.row(r).cwiseProduct(x.row(r)) / s;
            if (dx.rows() == 0) continue;
            const float ux = dy.row(r).dot(x.row(r));   // the bug: dy, not dy * gain
            dx.row(r) = dy.row(r) / s - x.row(r) * (ux / (n * s * s * s));
        }
    }

private:
    template <class Row>
    static float rms(const Row& row) { return std::sqrt(row.squaredNorm() / float(row.size()) + 1e-6f); }
    std::vector<bp::NamedTensor> params_;
};

// Squared error that returns the mean over the rows it is given, not the sum: its
// gradient is right for that mean, but the loss of a batch then depends on how the
// batch is cut into shards.
class MeanSquaredError final : public bp::Loss {
public:
    void check(const bp::Shape& prediction, const bp::TargetInfo& targets) const override {
        if (targets.classes != 0 || prediction.size() != targets.columns)
            throw bp::Error("mean_loss needs one output per regression target");
    }
    double evaluate(bp::ConstMatrixRef pred, bp::ConstMatrixRef target, bp::MatrixRef dpred, float scale) const override {
        const double n = double(pred.rows());
        if (dpred.rows() > 0) dpred = (pred - target) * float(2.0 * double(scale) / n);
        return (pred - target).cast<double>().squaredNorm() / n;   // the bug: / n
    }
};

// y = x * scale per feature, keeping x for backward in a member instead of the
// workspace: right when one shard runs forward then backward, wrong when shards
// interleave or run at once.
class CachedScale final : public bp::Layer {
public:
    bp::Shape build(const bp::Shape& input, const bp::Random& init) override {
        bp::Matrix s(1, input.size());
        for (Eigen::Index i = 0; i < s.size(); ++i) s(0, i) = init.uniform(uint64_t(i), 0.5f, 1.5f);
        params_ = {{"scale", s}};
        return input;
    }
    std::span<bp::NamedTensor> parameters() override { return params_; }
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext&) const override {
        cache_ = x;   // the bug: per-shard data in the layer
        y = x.array().rowwise() * params_[0].value.row(0).array();
    }
    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix> grads, bp::Workspace*, const bp::StepContext&) const override {
        grads[0] = (dy.array() * cache_.topRows(dy.rows()).array()).colwise().sum();
        if (dx.rows() > 0) dx = dy.array().rowwise() * params_[0].value.row(0).array();
    }

private:
    mutable bp::Matrix cache_;
    std::vector<bp::NamedTensor> params_;
};

// y = x, keeping a running mean of its input as batch norm keeps its statistics, but
// reading in end_step a shard's mean that is not in the workspace's step_statistics():
// right in one process, stale for shards another process ran.
class HiddenStatistics final : public bp::Layer {
public:
    bp::Shape build(const bp::Shape& input, const bp::Random&) override {
        buffers_ = {{"running_mean", bp::Matrix::Zero(1, input.size())}};
        return input;
    }
    std::span<bp::NamedTensor> buffers() override { return buffers_; }
    struct Mean final : bp::Workspace {
        bp::Matrix mean;   // the bug: not in step_statistics()
    };
    std::unique_ptr<bp::Workspace> make_workspace(int64_t) const override {
        auto ws = std::make_unique<Mean>();
        ws->mean = bp::Matrix::Zero(1, buffers_[0].value.cols());
        return ws;
    }
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace* ws, const bp::StepContext& ctx) const override {
        if (ctx.training) static_cast<Mean&>(*ws).mean = x.colwise().mean();
        y = x;
    }
    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix>, bp::Workspace*, const bp::StepContext&) const override {
        if (dx.rows() > 0) dx = dy;
    }
    void end_step(std::span<bp::Workspace* const> shards) override {
        for (auto* w : shards) buffers_[0].value = 0.9f * buffers_[0].value + 0.1f * static_cast<Mean&>(*w).mean;
    }

private:
    std::vector<bp::NamedTensor> buffers_;
};

}  // namespace

BACKPLANE_PLUGIN("blind-spots", "1.0") {
    manifest.layer<GainlessNorm>("gainless_norm", "rms_norm whose backward forgets the gain", bp::Schema());
    manifest.loss<MeanSquaredError>("mean_loss", "squared error averaged instead of summed");
    manifest.layer<CachedScale>("cached_scale", "a scale that keeps its input in the layer", bp::Schema());
    manifest.layer<HiddenStatistics>("hidden_statistics", "running statistics end_step reads past step_statistics()",
                                     bp::Schema());
}
