// gru (Cho et al. 2014), in the form cuDNN and PyTorch compute, per step t:
//   [a_r a_z a_n] = x_t W_x + b,   [u_r u_z u_n] = h_{t-1} W_h + b_h
//   r = sigmoid(a_r + u_r), z = sigmoid(a_z + u_z), m = tanh(a_n + r u_n)
//   h_t = (1 - z) m + z h_{t-1}                       (h_{-1} = 0)
// The reset gate multiplies u_n with its bias, hence the second bias b_h.
#include "gemm.hpp"
#include "layers.hpp"
#include "recurrent.hpp"

namespace {

class Gru final : public Recurrent {
public:
    explicit Gru(const bp::Params& p) : Recurrent(p, "gru", 3, true) {}

    struct Scratch final : bp::Workspace {
        bp::Matrix z;                // (n*T, 3H): sample-major scratch for the input products
        bp::Matrix gates, dgates;    // (T*n, 3H): r z m, and dL/d[a_r a_z a_n]
        bp::Matrix drec;             // (T*n, 3H): dL/d[u_r u_z u_n]
        bp::Matrix un, h;            // (T*n, H): u_n of each step, and the states
        bp::Matrix rec;              // (n, 3H): one step's h_{t-1} W_h + b_h
        bp::Matrix dh, dnext;        // (n, H)
    };
    std::unique_ptr<bp::Workspace> make_workspace(int64_t max_rows) const override {
        auto ws = std::make_unique<Scratch>();
        const int64_t rows = max_rows * positions_;
        ws->z.resize(rows, 3 * units_);
        ws->gates.resize(rows, 3 * units_);
        ws->dgates.resize(rows, 3 * units_);
        ws->drec.resize(rows, 3 * units_);
        ws->un.resize(rows, units_);
        ws->h.resize(rows, units_);
        ws->rec.resize(max_rows, 3 * units_);
        ws->dh.resize(max_rows, units_);
        ws->dnext.resize(max_rows, units_);
        return ws;
    }

    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace* ws, const bp::StepContext&) const override {
        auto& s = static_cast<Scratch&>(*ws);
        const Eigen::Index n = x.rows(), H = units_;
        project_inputs(x, s.z, s.gates);
        auto rec = s.rec.topRows(n);
        for (Eigen::Index t = 0; t < positions_; ++t) {
            if (t > 0)
                gemm(step_rows(s.h, t - 1, n), false, recurrent_weight(), false, rec);
            else
                rec.setZero();
            rec.rowwise() += recurrent_bias().row(0);
            auto a = step_rows(s.gates, t, n);
            a.leftCols(2 * H) = sigmoid((a.leftCols(2 * H) + rec.leftCols(2 * H)).array()).matrix();
            step_rows(s.un, t, n) = rec.rightCols(H);
            const auto r = a.leftCols(H).array(), z = a.middleCols(H, H).array();
            a.rightCols(H) = (a.rightCols(H).array() + r * rec.rightCols(H).array()).tanh().matrix();
            const auto m = a.rightCols(H).array();
            auto h = step_rows(s.h, t, n);
            if (t > 0)
                h = ((1.0f - z) * m + z * step_rows(s.h, t - 1, n).array()).matrix();
            else
                h = ((1.0f - z) * m).matrix();
        }
        write_output(s.h, y, n);
    }

    // Per step, from dh = dL/dh_t (the output's part plus the next step's):
    //   dz = dh (h_{t-1} - m), dm = dh (1 - z), da_n = dm (1 - m^2), dr = da_n u_n
    //   da_r = du_r = dr r(1-r), da_z = du_z = dz z(1-z), du_n = da_n r
    //   dh_next (for t-1) = dh z + du W_h^T
    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix> grads, bp::Workspace* ws, const bp::StepContext&) const override {
        auto& s = static_cast<Scratch&>(*ws);
        const Eigen::Index n = x.rows(), H = units_;
        auto dh = s.dh.topRows(n), dnext = s.dnext.topRows(n);
        dnext.setZero();
        for (Eigen::Index t = positions_ - 1; t >= 0; --t) {
            dh = dnext;
            add_output_gradient(dy, t, dh);
            const auto a = step_rows(s.gates, t, n);
            const auto r = a.leftCols(H).array(), z = a.middleCols(H, H).array(), m = a.rightCols(H).array();
            auto da = step_rows(s.dgates, t, n);
            auto du = step_rows(s.drec, t, n);
            if (t > 0)
                da.middleCols(H, H) = (dh.array() * (step_rows(s.h, t - 1, n).array() - m) * z * (1.0f - z)).matrix();
            else
                da.middleCols(H, H) = (dh.array() * -m * z * (1.0f - z)).matrix();
            da.rightCols(H) = (dh.array() * (1.0f - z) * (1.0f - m.square())).matrix();
            da.leftCols(H) = (da.rightCols(H).array() * step_rows(s.un, t, n).array() * r * (1.0f - r)).matrix();
            du.leftCols(2 * H) = da.leftCols(2 * H);
            du.rightCols(H) = (da.rightCols(H).array() * r).matrix();
            if (t > 0) {
                dnext = (dh.array() * z).matrix();
                gemm(du, false, recurrent_weight(), true, dnext, true);
            }
        }
        recurrent_weight_gradient(s.h, s.drec, n, grads[1]);
        grads[3] = s.drec.topRows(n * positions_).colwise().sum();
        input_backward(x, s.dgates, s.z, dx, grads);
    }
};

}  // namespace

void register_gru(bp::Manifest& manifest) {
    manifest.layer<Gru>(
        "gru", "gated recurrent unit over a sequence [T, C] -> [T, units] or its last state [units]",
        Recurrent::schema(), Recurrent::checks());
}
