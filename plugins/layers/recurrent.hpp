// What lstm and gru share: a cell of H units reads a sequence [T, C] one position at a
// time and outputs its state at every position [T, H] (return_sequences) or the last
// one [H]. The inputs' part of every gate at every position is one product before the
// loop; the loop then adds h_{t-1} W_h, step by step, and backward runs it in reverse
// (backprop through time).
//
// Step buffers are time-major: the n samples' rows of step t are rows t*n .. t*n+n-1, so
// each step's product runs on a block of contiguous rows. A sample's row in the core's
// batches is position-major (row r*T + t of the per-position view), so the two are
// reordered on the way in and out. Nothing mixes samples: the result is the same at any
// thread count.
#pragma once

#include <backplane/backplane.hpp>

#include <string>
#include <vector>

class Recurrent : public bp::Layer {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .integer("units", 64, 1, 1 << 16, "the state's size H")
            .boolean("return_sequences", true, "output the state at every position [T, H]; false: the last one [H]");
    }

    // Where check-plugin checks a cell: short sequences, the last state alone, one step (no
    // recurrent gradient) and 48 steps (gradients through a long window).
    static std::vector<bp::CheckCase> checks() {
        return {{bp::Shape{5, 3}, {{"units", int64_t(4)}}},
                {bp::Shape{4, 2}, {{"units", int64_t(3)}, {"return_sequences", false}}},
                {bp::Shape{1, 3}, {{"units", int64_t(2)}}},
                {bp::Shape{48, 2}, {{"units", int64_t(3)}}}};
    }

    bp::Shape build(const bp::Shape& input, const bp::Random& init) override;
    std::span<bp::NamedTensor> parameters() override { return params_; }

protected:
    // gates: the cell's gate blocks of H (LSTM 4, GRU 3); recurrent_bias: a second bias
    // on h_{t-1} W_h (the GRU's reset gate multiplies it).
    Recurrent(const bp::Params& p, std::string kind, int64_t gates, bool recurrent_bias);

    // The parameters, in this order: input_weight (C, gates*H), recurrent_weight
    // (H, gates*H), bias (1, gates*H)[, recurrent_bias (1, gates*H)].
    const bp::Matrix& input_weight() const { return params_[0].value; }
    const bp::Matrix& recurrent_weight() const { return params_[1].value; }
    const bp::Matrix& bias() const { return params_[2].value; }
    const bp::Matrix& recurrent_bias() const { return params_[3].value; }

    // The bias's starting value (zero unless a cell says otherwise).
    virtual void init_bias(bp::Matrix&) const {}

    // steps (T*n, gates*H), time-major <- x W_x + b for every position; z (n*T, gates*H)
    // is scratch for the sample-major product.
    void project_inputs(bp::ConstMatrixRef x, bp::Matrix& z, bp::Matrix& steps) const;
    // y <- the states h (T*n, H, time-major): every position's, or the last.
    void write_output(const bp::Matrix& h, bp::MatrixRef y, Eigen::Index n) const;
    // dh += dL/dh_t from the layer's output gradient dy (nothing for t < T-1 without return_sequences).
    void add_output_gradient(bp::ConstMatrixRef dy, Eigen::Index t, bp::MatrixRef dh) const;
    // From dsteps (T*n, gates*H) = dL/d(x W_x + b) per step: grads[0] (input_weight),
    // grads[2] (bias) and dx; z (n*T, gates*H) is scratch.
    void input_backward(bp::ConstMatrixRef x, const bp::Matrix& dsteps, bp::Matrix& z, bp::MatrixRef dx,
                        std::span<bp::Matrix> grads) const;
    // grads[1] = sum over t >= 1 of h_{t-1}^T drec_t (h_{-1} = 0), drec (T*n, gates*H).
    void recurrent_weight_gradient(const bp::Matrix& h, const bp::Matrix& drec, Eigen::Index n,
                                   bp::Matrix& grad) const;

    int64_t units_;
    bool sequences_;
    int64_t positions_ = 0, channels_ = 0;

private:
    std::string kind_;
    int64_t gates_;
    bool recurrent_bias_;
    std::vector<bp::NamedTensor> params_;
};

// The n rows of step t in a time-major buffer.
inline auto step_rows(bp::Matrix& m, Eigen::Index t, Eigen::Index n) { return m.middleRows(t * n, n); }
inline auto step_rows(const bp::Matrix& m, Eigen::Index t, Eigen::Index n) { return m.middleRows(t * n, n); }

inline auto sigmoid(const auto& a) { return (1.0f + (-a).exp()).inverse(); }
