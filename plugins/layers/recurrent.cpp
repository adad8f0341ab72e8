#include "recurrent.hpp"

#include <Eigen/QR>

#include <cmath>

#include "gemm.hpp"

Recurrent::Recurrent(const bp::Params& p, std::string kind, int64_t gates, bool recurrent_bias)
    : units_(p.integer("units")),
      sequences_(p.boolean("return_sequences")),
      kind_(std::move(kind)),
      gates_(gates),
      recurrent_bias_(recurrent_bias) {}

namespace {

// An orthogonal (h, h) matrix from a gaussian one's QR (signs fixed by R's diagonal):
// repeated products with it neither grow nor shrink a state (Saxe et al. 2014).
Eigen::MatrixXd orthogonal(Eigen::Index h, const bp::Random& stream) {
    Eigen::MatrixXd a(h, h);
    for (Eigen::Index i = 0; i < a.size(); ++i) a.data()[i] = stream.normal(uint64_t(i));
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
    Eigen::MatrixXd q = qr.householderQ();
    for (Eigen::Index j = 0; j < h; ++j)
        if (qr.matrixQR()(j, j) < 0) q.col(j) = -q.col(j);
    return q;
}

}  // namespace

bp::Shape Recurrent::build(const bp::Shape& input, const bp::Random& init) {
    if (input.rank() != 2)
        throw bp::Error(kind_ + " needs a sequence [T, C], got " + input.str() +
                        " (an embedding makes one from token ids)");
    positions_ = input.dims[0];
    channels_ = input.dims[1];
    const int64_t width = gates_ * units_;
    params_ = {{"input_weight", bp::Matrix(channels_, width)},
               {"recurrent_weight", bp::Matrix(units_, width)},
               {"bias", bp::Matrix::Zero(1, width), bp::ParameterRole::bias}};
    if (recurrent_bias_) params_.push_back({"recurrent_bias", bp::Matrix::Zero(1, width), bp::ParameterRole::bias});
    // Input weights N(0, 1/C); each gate's recurrent block orthogonal.
    bp::Matrix& wx = params_[0].value;
    const bp::Random wx_stream = init.derive(0);
    const float std = float(1.0 / std::sqrt(double(channels_)));
    for (Eigen::Index i = 0; i < wx.size(); ++i) wx.data()[i] = float(wx_stream.normal(uint64_t(i))) * std;
    for (int64_t g = 0; g < gates_; ++g)
        params_[1].value.middleCols(g * units_, units_) = orthogonal(units_, init.derive(1 + uint64_t(g))).cast<float>();
    init_bias(params_[2].value);
    return sequences_ ? bp::Shape{positions_, units_} : bp::Shape{units_};
}

void Recurrent::project_inputs(bp::ConstMatrixRef x, bp::Matrix& z, bp::Matrix& steps) const {
    const Eigen::Index n = x.rows();
    auto zs = z.topRows(n * positions_);
    gemm(bp::per_position(x, channels_), false, input_weight(), false, zs);
    for (Eigen::Index r = 0; r < n; ++r)
        for (Eigen::Index t = 0; t < positions_; ++t) steps.row(t * n + r) = zs.row(r * positions_ + t) + bias();
}

void Recurrent::write_output(const bp::Matrix& h, bp::MatrixRef y, Eigen::Index n) const {
    if (!sequences_) {
        y = step_rows(h, positions_ - 1, n);
        return;
    }
    auto out = bp::per_position(y, units_);
    for (Eigen::Index r = 0; r < n; ++r)
        for (Eigen::Index t = 0; t < positions_; ++t) out.row(r * positions_ + t) = h.row(t * n + r);
}

void Recurrent::add_output_gradient(bp::ConstMatrixRef dy, Eigen::Index t, bp::MatrixRef dh) const {
    if (!sequences_) {
        if (t == positions_ - 1) dh += dy;
        return;
    }
    const auto d = bp::per_position(dy, units_);
    for (Eigen::Index r = 0; r < dh.rows(); ++r) dh.row(r) += d.row(r * positions_ + t);
}

void Recurrent::input_backward(bp::ConstMatrixRef x, const bp::Matrix& dsteps, bp::Matrix& z, bp::MatrixRef dx,
                               std::span<bp::Matrix> grads) const {
    const Eigen::Index n = x.rows(), rows = n * positions_;
    const auto ds = dsteps.topRows(rows);
    grads[2] = ds.colwise().sum();
    auto dz = z.topRows(rows);
    for (Eigen::Index r = 0; r < n; ++r)
        for (Eigen::Index t = 0; t < positions_; ++t) dz.row(r * positions_ + t) = ds.row(t * n + r);
    gemm(bp::per_position(x, channels_), true, dz, false, grads[0]);
    if (dx.rows() > 0) gemm(dz, false, input_weight(), true, bp::per_position(dx, channels_));
}

void Recurrent::recurrent_weight_gradient(const bp::Matrix& h, const bp::Matrix& drec, Eigen::Index n,
                                          bp::Matrix& grad) const {
    const Eigen::Index later = (positions_ - 1) * n;   // the rows of steps 1 .. T-1
    if (later == 0) {
        grad.setZero();
        return;
    }
    gemm(h.topRows(later), true, drec.middleRows(n, later), false, grad);
}
