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
        if (t.classes > 0 && t.columns > 1)
            throw bp::Error("mse regresses numbers; these targets are a class at each of " + std::to_string(t.columns) +
                            " positions: use softmax_cross_entropy");
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
// with log-sum-exp, so no exp overflows and no log(0) appears. With a label per
// position (T target columns, the model outputs [T, classes]: a language model's
// next-token targets) a sample's loss is the mean over its positions, in nats per token.
struct SoftmaxCrossEntropy final : bp::Loss {
    void check(const bp::Shape& pred, const bp::TargetInfo& t) const override {
        if (t.classes < 2)
            throw bp::Error("softmax_cross_entropy needs class labels (columns of class indices); "
                            "this dataset has regression targets: use mse");
        if (t.columns == 1 && pred.size() != t.classes)
            throw bp::Error("softmax_cross_entropy needs one logit per class: the model must output " +
                            std::to_string(t.classes) + " values per sample, got " + pred.str());
        if (t.columns > 1 && pred != bp::Shape{t.columns, t.classes})
            throw bp::Error("softmax_cross_entropy needs one logit per class at each of the " +
                            std::to_string(t.columns) + " positions: the model must output " +
                            bp::Shape{t.columns, t.classes}.str() + ", got " + pred.str());
    }
    // loss = logsumexp(z) - z_label; dz = softmax(z) - onehot(label), per position,
    // both divided by the positions.
    double evaluate(ConstMatrixRef pred, ConstMatrixRef target, MatrixRef dpred, float scale) const override {
        const Eigen::Index positions = target.cols(), classes = pred.cols() / positions;
        const float step = scale / float(positions);
        double total = 0;
        for (Eigen::Index r = 0; r < pred.rows(); ++r)
            for (Eigen::Index t = 0; t < positions; ++t) {
                const auto z = pred.row(r).segment(t * classes, classes);
                const auto label = static_cast<Eigen::Index>(target(r, t));
                const float m = z.maxCoeff();
                const float sum = (z.array() - m).exp().sum();
                total += (double(m) + std::log(double(sum)) - double(z(label))) / double(positions);
                if (dpred.rows() > 0) {
                    auto d = dpred.row(r).segment(t * classes, classes);
                    d = (z.array() - m).exp() * (step / sum);
                    d(label) -= step;
                }
            }
        return total;
    }
    int64_t count_correct(ConstMatrixRef pred, ConstMatrixRef target) const override {
        const Eigen::Index positions = target.cols(), classes = pred.cols() / positions;
        int64_t correct = 0;
        for (Eigen::Index r = 0; r < pred.rows(); ++r)
            for (Eigen::Index t = 0; t < positions; ++t) {
                Eigen::Index best;
                pred.row(r).segment(t * classes, classes).maxCoeff(&best);
                correct += best == static_cast<Eigen::Index>(target(r, t));
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
    // Each output on the right side of 0.5 counts (per label, for several).
    int64_t count_correct(ConstMatrixRef pred, ConstMatrixRef target) const override {
        return ((pred.array() > 0.0f) == (target.array() > 0.5f)).count();
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
