// lstm (Hochreiter & Schmidhuber 1997, with a forget gate, Gers et al. 2000), per step t:
//   [a_i a_f a_g a_o] = x_t W_x + b + h_{t-1} W_h
//   i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
//   c_t = f c_{t-1} + i g,   h_t = o tanh(c_t)        (h_{-1} = c_{-1} = 0)
// The forget gate's bias starts at 1 (Jozefowicz et al. 2015): the cell remembers at first.
#include "gemm.hpp"
#include "layers.hpp"
#include "recurrent.hpp"

namespace {

class Lstm final : public Recurrent {
public:
    explicit Lstm(const bp::Params& p) : Recurrent(p, "lstm", 4, false) {}

    struct Scratch final : bp::Workspace {
        bp::Matrix z;               // (n*T, 4H): sample-major scratch for the input products
        bp::Matrix gates, dgates;   // (T*n, 4H): i f g o after their functions, and dL/da
        bp::Matrix c, h;            // (T*n, H)
        bp::Matrix dh, dc, dnext;   // (n, H): one step's gradients
    };
    std::unique_ptr<bp::Workspace> make_workspace(int64_t max_rows) const override {
        auto ws = std::make_unique<Scratch>();
        const int64_t rows = max_rows * positions_;
        ws->z.resize(rows, 4 * units_);
        ws->gates.resize(rows, 4 * units_);
        ws->dgates.resize(rows, 4 * units_);
        ws->c.resize(rows, units_);
        ws->h.resize(rows, units_);
        ws->dh.resize(max_rows, units_);
        ws->dc.resize(max_rows, units_);
        ws->dnext.resize(max_rows, units_);
        return ws;
    }

    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace* ws, const bp::StepContext&) const override {
        auto& s = static_cast<Scratch&>(*ws);
        const Eigen::Index n = x.rows(), H = units_;
        project_inputs(x, s.z, s.gates);
        for (Eigen::Index t = 0; t < positions_; ++t) {
            auto a = step_rows(s.gates, t, n);
            if (t > 0) gemm(step_rows(s.h, t - 1, n), false, recurrent_weight(), false, a, true);
            a.leftCols(2 * H) = sigmoid(a.leftCols(2 * H).array()).matrix();
            a.middleCols(2 * H, H) = a.middleCols(2 * H, H).array().tanh().matrix();
            a.rightCols(H) = sigmoid(a.rightCols(H).array()).matrix();
            const auto i = a.leftCols(H).array(), f = a.middleCols(H, H).array();
            const auto g = a.middleCols(2 * H, H).array(), o = a.rightCols(H).array();
            auto c = step_rows(s.c, t, n);
            if (t > 0)
                c = (f * step_rows(s.c, t - 1, n).array() + i * g).matrix();
            else
                c = (i * g).matrix();
            step_rows(s.h, t, n) = (o * c.array().tanh()).matrix();
        }
        write_output(s.h, y, n);
    }

    // Per step, from dh = dL/dh_t (the output's part plus the next step's):
    //   dc = dL/dc_t = dc_next + dh o (1 - tanh(c)^2);  dc_next (for t-1) = dc f
    //   da_i = dc g i(1-i), da_f = dc c_{t-1} f(1-f), da_g = dc i (1-g^2), da_o = dh tanh(c) o(1-o)
    //   dh_next (for t-1) = da W_h^T
    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix> grads, bp::Workspace* ws, const bp::StepContext&) const override {
        auto& s = static_cast<Scratch&>(*ws);
        const Eigen::Index n = x.rows(), H = units_;
        auto dh = s.dh.topRows(n), dc = s.dc.topRows(n), dnext = s.dnext.topRows(n);
        dnext.setZero();
        dc.setZero();   // holds dc_next between steps
        for (Eigen::Index t = positions_ - 1; t >= 0; --t) {
            dh = dnext;
            add_output_gradient(dy, t, dh);
            const auto a = step_rows(s.gates, t, n);
            const auto i = a.leftCols(H).array(), f = a.middleCols(H, H).array();
            const auto g = a.middleCols(2 * H, H).array(), o = a.rightCols(H).array();
            const auto tc = step_rows(s.c, t, n).array().tanh();
            auto da = step_rows(s.dgates, t, n);
            dc.array() += dh.array() * o * (1.0f - tc.square());
            da.leftCols(H) = (dc.array() * g * i * (1.0f - i)).matrix();
            if (t > 0)
                da.middleCols(H, H) = (dc.array() * step_rows(s.c, t - 1, n).array() * f * (1.0f - f)).matrix();
            else
                da.middleCols(H, H).setZero();
            da.middleCols(2 * H, H) = (dc.array() * i * (1.0f - g.square())).matrix();
            da.rightCols(H) = (dh.array() * tc * o * (1.0f - o)).matrix();
            dc.array() *= f;
            if (t > 0) gemm(da, false, recurrent_weight(), true, dnext);
        }
        recurrent_weight_gradient(s.h, s.dgates, n, grads[1]);
        input_backward(x, s.dgates, s.z, dx, grads);
    }

private:
    void init_bias(bp::Matrix& b) const override { b.middleCols(units_, units_).setOnes(); }
};

}  // namespace

void register_lstm(bp::Manifest& manifest) {
    manifest.layer<Lstm>(
        "lstm", "long short-term memory over a sequence [T, C] -> [T, units] or its last state [units]",
        Recurrent::schema(), Recurrent::checks());
}
