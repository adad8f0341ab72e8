// The built-in losses. Each returns the sum of per-sample losses over the rows it
// is given and writes scale * d(sum)/d(pred); the trainer passes scale = 1/batch.
#include <backplane/backplane.hpp>

#include <cmath>

namespace {

using bp::ConstMatrixRef;
using bp::MatrixRef;

// Mean squared error per sample: mean over outputs of (pred - target)^2
// (summed over the batch by the trainer, then divided by it, as torch's MSELoss).
struct MeanSquaredError final : bp::Loss {
    void check(const bp::Shape& pred, const bp::TargetInfo& t) const override {
        const int64_t want = t.classes > 0 ? 1 : t.columns;
        if (pred.size() != want)
            throw bp::Error("mse needs the model to output " + std::to_string(want) + " value(s) per sample (" +
                            std::to_string(t.columns) + " target column(s)), got " + pred.str());
    }
    double evaluate(ConstMatrixRef pred, ConstMatrixRef target, MatrixRef dpred, float scale) const override {
        const float per = 1.0f / float(pred.cols());
        if (dpred.rows() > 0) dpred = (pred - target) * (2.0f * per * scale);
        return double(per) * (pred - target).cast<double>().squaredNorm();
    }
};

// Cross entropy of softmax(pred) against class indices, computed from the logits
// with log-sum-exp, so no exp overflows and no log(0) appears.
struct SoftmaxCrossEntropy final : bp::Loss {
    void check(const bp::Shape& pred, const bp::TargetInfo& t) const override {
        if (t.classes < 2 || t.columns != 1)
            throw bp::Error("softmax_cross_entropy needs class labels (one column of class indices); "
                            "this dataset has regression targets: use mse");
        if (pred.size() != t.classes)
            throw bp::Error("softmax_cross_entropy needs one logit per class: the model must output " +
                            std::to_string(t.classes) + " values per sample, got " + pred.str());
    }
    // loss = logsumexp(z) - z_label; dz = softmax(z) - onehot(label)
    double evaluate(ConstMatrixRef pred, ConstMatrixRef target, MatrixRef dpred, float scale) const override {
        double total = 0;
        for (Eigen::Index r = 0; r < pred.rows(); ++r) {
            const auto z = pred.row(r);
            const auto label = static_cast<Eigen::Index>(target(r, 0));
            const float m = z.maxCoeff();
            const float sum = (z.array() - m).exp().sum();
            total += double(m) + std::log(double(sum)) - double(z(label));
            if (dpred.rows() > 0) {
                dpred.row(r) = (z.array() - m).exp() * (scale / sum);
                dpred(r, label) -= scale;
            }
        }
        return total;
    }
    int64_t count_correct(ConstMatrixRef pred, ConstMatrixRef target) const override {
        int64_t correct = 0;
        for (Eigen::Index r = 0; r < pred.rows(); ++r) {
            Eigen::Index best;
            pred.row(r).maxCoeff(&best);
            correct += best == static_cast<Eigen::Index>(target(r, 0));
        }
        return correct;
    }
};

// Binary cross entropy on logits, per output, averaged over outputs (multi-label
// when there are several). Stable form: max(z,0) - z t + log(1 + exp(-|z|)).
struct BinaryCrossEntropy final : bp::Loss {
    void check(const bp::Shape& pred, const bp::TargetInfo& t) const override {
        if (t.classes > 2)
            throw bp::Error("binary_cross_entropy needs 0/1 targets; this dataset has " +
                            std::to_string(t.classes) + " classes: use softmax_cross_entropy");
        if (pred.size() != t.columns)
            throw bp::Error("binary_cross_entropy needs one logit per target column: the model must output " +
                            std::to_string(t.columns) + " value(s) per sample, got " + pred.str());
    }
    // dz = (sigmoid(z) - t) / outputs
    double evaluate(ConstMatrixRef pred, ConstMatrixRef target, MatrixRef dpred, float scale) const override {
        const auto z = pred.array();
        const auto t = target.array();
        const float per = 1.0f / float(pred.cols());
        if (dpred.rows() > 0) dpred = ((1.0f + (-z).exp()).inverse() - t) * (per * scale);
        return double(per) * (z.max(0.0f) - z * t + (1.0f + (-z.abs()).exp()).log()).cast<double>().sum();
    }
    // A row is right when every output is on the right side of 0.5.
    int64_t count_correct(ConstMatrixRef pred, ConstMatrixRef target) const override {
        return ((pred.array() > 0.0f) == (target.array() > 0.5f)).rowwise().all().count();
    }
};

}  // namespace

BACKPLANE_PLUGIN("backplane-losses", "0.1.0") {
    manifest.loss<MeanSquaredError>("mse", "mean squared error: mean over outputs of (pred - target)^2")
        .loss<SoftmaxCrossEntropy>("softmax_cross_entropy",
                                   "cross entropy of softmax(logits) against class indices (fused, stable)")
        .loss<BinaryCrossEntropy>("binary_cross_entropy",
                                  "cross entropy of sigmoid(logits) against 0/1 targets (fused, stable)");
}
