// multi_head_attention: self-attention over a sequence [T, C] (Vaswani et al. 2017).
//   [Q K V] = x W_qkv + b_qkv              (per position; W_qkv is (C, 3C))
//   per head h (d = C / heads channels):  P_h = softmax(Q_h K_h^T / sqrt(d)), with position
//   i seeing only j <= i when causal;  O_h = dropout(P_h) V_h
//   y = [O_1 ... O_heads] W_out + b_out    (W_out is (C, C))
// The products are per sample and head (T x d by d x T), on the layers' gemm (which
// allocates nothing in a step): nothing mixes samples, so a shard's rows are
// independent and the result is the same at any thread count.
#include <backplane/backplane.hpp>

#include <cmath>
#include <limits>
#include <type_traits>

#include "gemm.hpp"
#include "layers.hpp"

namespace {

class MultiHeadAttention final : public bp::Layer {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .integer("heads", 4, 1, 1024, "attention heads; the channels C must be a multiple")
            .boolean("causal", true, "each position attends to itself and the positions before it only (a language model)")
            .number("dropout", 0.0, 0.0, 0.99, "dropout on the attention weights in training")
            .boolean("bias", true, "learned biases on the projections");
    }
    explicit MultiHeadAttention(const bp::Params& p)
        : heads_(p.integer("heads")),
          causal_(p.boolean("causal")),
          dropout_(float(p.number("dropout"))),
          bias_(p.boolean("bias")) {}

    bp::Shape build(const bp::Shape& input, const bp::Random& init) override {
        if (input.rank() != 2)
            throw bp::Error("multi_head_attention needs a sequence [T, C], got " + input.str());
        positions_ = input.dims[0];
        channels_ = input.dims[1];
        if (channels_ % heads_ != 0)
            throw bp::Error("multi_head_attention: " + std::to_string(channels_) + " channels do not split into " +
                            std::to_string(heads_) + " heads; make the channels a multiple of heads");
        // Weights N(0, 1/C): unit-variance inputs give unit-variance projections.
        params_ = {{"qkv_weight", bp::Matrix(channels_, 3 * channels_)}, {"out_weight", bp::Matrix(channels_, channels_)}};
        const float std = float(1.0 / std::sqrt(double(channels_)));
        for (std::size_t k = 0; k < 2; ++k) {
            bp::Matrix& w = params_[k].value;
            const bp::Random stream = init.derive(k);
            for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = float(stream.normal(uint64_t(i))) * std;
        }
        if (bias_) {
            params_.push_back({"qkv_bias", bp::Matrix::Zero(1, 3 * channels_), bp::ParameterRole::bias});
            params_.push_back({"out_bias", bp::Matrix::Zero(1, channels_), bp::ParameterRole::bias});
        }
        return input;
    }
    std::span<bp::NamedTensor> parameters() override { return params_; }

    struct Scratch final : bp::Workspace {
        bp::Matrix qkv, dqkv;     // (rows*T, 3C)
        bp::Matrix heads, dheads; // (rows*T, C): the heads' outputs side by side, and their gradient
        bp::Matrix probs;         // (rows*heads*T, T): the attention weights before dropout
        bp::Matrix dprobs;        // (T, T), one head at a time
    };
    std::unique_ptr<bp::Workspace> make_workspace(int64_t max_rows) const override {
        auto ws = std::make_unique<Scratch>();
        const int64_t rows = max_rows * positions_;
        ws->qkv.resize(rows, 3 * channels_);
        ws->dqkv.resize(rows, 3 * channels_);
        ws->heads.resize(rows, channels_);
        ws->dheads.resize(rows, channels_);
        ws->probs.resize(max_rows * heads_ * positions_, positions_);
        ws->dprobs.resize(positions_, positions_);
        return ws;
    }

    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace* ws, const bp::StepContext& ctx) const override {
        auto& s = static_cast<Scratch&>(*ws);
        const Eigen::Index n = x.rows(), rows = n * positions_, d = channels_ / heads_;
        auto qkv = s.qkv.topRows(rows);
        auto heads = s.heads.topRows(rows);
        gemm(bp::per_position(x, channels_), false, params_[0].value, false, qkv);
        if (bias_) qkv.rowwise() += params_[2].value.row(0);
        const float scale = float(1.0 / std::sqrt(double(d)));
        for (Eigen::Index r = 0; r < n; ++r)
            for (Eigen::Index h = 0; h < heads_; ++h) {
                const auto q = part(qkv, 0, r, h), k = part(qkv, 1, r, h), v = part(qkv, 2, r, h);
                auto p = probs(s, r, h);
                gemm(q, false, k, true, p);
                p *= scale;
                softmax_rows(p);
                auto o = part(heads, 0, r, h);
                if (dropping(ctx)) {
                    s.dprobs = p;
                    apply_dropout(s.dprobs, ctx, r, h);
                    gemm(s.dprobs, false, v, false, o);
                } else {
                    gemm(p, false, v, false, o);
                }
            }
        auto out = bp::per_position(y, channels_);
        gemm(heads, false, params_[1].value, false, out);
        if (bias_) out.rowwise() += params_[3].value.row(0);
    }

    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix> grads, bp::Workspace* ws, const bp::StepContext& ctx) const override {
        auto& s = static_cast<Scratch&>(*ws);
        const Eigen::Index n = x.rows(), rows = n * positions_, d = channels_ / heads_;
        const auto dout = bp::per_position(dy, channels_);
        const auto qkv = s.qkv.topRows(rows);
        auto dqkv = s.dqkv.topRows(rows);
        auto dheads = s.dheads.topRows(rows);
        gemm(s.heads.topRows(rows), true, dout, false, grads[1]);
        if (bias_) grads[3] = dout.colwise().sum();
        gemm(dout, false, params_[1].value, true, dheads);
        const float scale = float(1.0 / std::sqrt(double(d)));
        for (Eigen::Index r = 0; r < n; ++r)
            for (Eigen::Index h = 0; h < heads_; ++h) {
                const auto q = part(qkv, 0, r, h), k = part(qkv, 1, r, h), v = part(qkv, 2, r, h);
                const auto p = probs(s, r, h);
                const auto dout_h = part(dheads, 0, r, h);
                auto dq = part(dqkv, 0, r, h), dk = part(dqkv, 1, r, h), dv = part(dqkv, 2, r, h);
                // dV = dropout(P)^T dO; dP = dropout'(dO V^T)
                s.dprobs = p;
                if (dropping(ctx)) apply_dropout(s.dprobs, ctx, r, h);
                gemm(s.dprobs, true, dout_h, false, dv);
                gemm(dout_h, false, v, true, s.dprobs);
                if (dropping(ctx)) apply_dropout(s.dprobs, ctx, r, h);
                // softmax: dS = P (dP - rowsum(dP P)); masked entries have P = 0
                for (Eigen::Index i = 0; i < positions_; ++i) {
                    const float dot = s.dprobs.row(i).dot(p.row(i));
                    s.dprobs.row(i) = (p.row(i).array() * (s.dprobs.row(i).array() - dot)).matrix() * scale;
                }
                gemm(s.dprobs, false, k, false, dq);
                gemm(s.dprobs, true, q, false, dk);
            }
        gemm(bp::per_position(x, channels_), true, dqkv, false, grads[0]);
        if (bias_) grads[2] = dqkv.colwise().sum();
        if (dx.rows() > 0) gemm(dqkv, false, params_[0].value, true, bp::per_position(dx, channels_));
    }

private:
    // Sample r's T rows of head h in projection `which` (0 Q, 1 K, 2 V) of a (rows*T, 3C)
    // matrix, or (which 0) of a (rows*T, C) one.
    template <class M>
    Eigen::Block<std::remove_reference_t<M>> part(M&& m, Eigen::Index which, Eigen::Index r, Eigen::Index h) const {
        const Eigen::Index d = channels_ / heads_;
        return m.block(r * positions_, which * channels_ + h * d, positions_, d);
    }

    Eigen::Block<bp::Matrix> probs(Scratch& s, Eigen::Index r, Eigen::Index h) const {
        return s.probs.block((r * heads_ + h) * positions_, 0, positions_, positions_);
    }

    // Row-wise softmax in place; with `causal`, entries right of the diagonal are 0.
    void softmax_rows(Eigen::Block<bp::Matrix> p) const {
        for (Eigen::Index i = 0; i < positions_; ++i) {
            const Eigen::Index seen = causal_ ? i + 1 : positions_;
            auto row = p.row(i).head(seen);
            const float m = row.maxCoeff();
            row = (row.array() - m).exp().matrix();
            row /= row.sum();
            p.row(i).tail(positions_ - seen).setZero();
        }
    }

    bool dropping(const bp::StepContext& ctx) const { return ctx.training && dropout_ > 0.0f; }

    // m *= mask / (1 - rate), the mask drawn at (batch row, head, i, j): backward redraws it.
    void apply_dropout(bp::Matrix& m, const bp::StepContext& ctx, Eigen::Index r, Eigen::Index h) const {
        const float keep = 1.0f / (1.0f - dropout_);
        const uint64_t base = (uint64_t(ctx.first_row + r) * uint64_t(heads_) + uint64_t(h)) * uint64_t(m.size());
        for (Eigen::Index i = 0; i < m.size(); ++i)
            m.data()[i] = ctx.random.uniform(base + uint64_t(i)) < dropout_ ? 0.0f : m.data()[i] * keep;
    }

    int64_t heads_;
    bool causal_;
    float dropout_;
    bool bias_;
    int64_t positions_ = 0, channels_ = 0;
    std::vector<bp::NamedTensor> params_;
};

}  // namespace

void register_attention(bp::Manifest& manifest) {
    manifest.layer<MultiHeadAttention>(
        "multi_head_attention", "self-attention over a sequence [T, C] -> [T, C]: heads, causal mask, dropout",
        MultiHeadAttention::schema(),
        {{bp::Shape{4, 6}, {{"heads", int64_t(2)}}},
         {bp::Shape{5, 4}, {{"heads", int64_t(1)}, {"dropout", 0.25}}},
         {bp::Shape{3, 8}, {{"heads", int64_t(4)}}}});
}
