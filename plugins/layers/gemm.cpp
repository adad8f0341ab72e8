#include "gemm.hpp"

#include <algorithm>

#ifdef BACKPLANE_OPENBLAS
#include <cblas.h>

extern "C" void openblas_set_num_threads(int);
#endif

namespace {

void eigen_gemm(bp::ConstMatrixRef a, bool transpose_a, bp::ConstMatrixRef b, bool transpose_b, bp::MatrixRef c,
                bool accumulate) {
    auto run = [&](const auto& lhs, const auto& rhs) {
        if (accumulate) c.noalias() += lhs * rhs;
        else c.noalias() = lhs * rhs;
    };
    if (transpose_a && transpose_b) run(a.transpose(), b.transpose());
    else if (transpose_a) run(a.transpose(), b);
    else if (transpose_b) run(a, b.transpose());
    else run(a, b);
}

#ifdef BACKPLANE_OPENBLAS
// OpenBLAS's own pool would run against the trainer's threads: every call runs on its
// caller. (The pthread build serialises its buffer bookkeeping, so concurrent calls
// from the shards are safe; its serial build does not unless built with USE_LOCKING.)
[[maybe_unused]] const bool single_threaded = (openblas_set_num_threads(1), true);

// OpenBLAS 0.3.21 sends products of up to 100^3 multiply-adds to its "small matrix"
// kernels; the one for two untransposed row-major operands mallocs a buffer on many
// calls (most n not a multiple of 16, measured over a sweep of shapes), the other three
// never did. Eigen does those from the stack, so a training step allocates nothing
// (tests/test_allocations.cpp sweeps the shapes through this function).
constexpr int64_t small_product = 100 * 100 * 100;

int64_t leading(const bp::ConstMatrixRef& m) {
    return std::max<int64_t>(m.outerStride(), std::max<int64_t>(m.cols(), 1));
}
#endif

}  // namespace

void gemm(bp::ConstMatrixRef a, bool transpose_a, bp::ConstMatrixRef b, bool transpose_b, bp::MatrixRef c,
          bool accumulate) {
#ifdef BACKPLANE_OPENBLAS
    const int64_t m = c.rows(), n = c.cols(), k = transpose_a ? a.rows() : a.cols();
    if (m * n * k > small_product || transpose_a || transpose_b) {
        cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans,
                    int(m), int(n), int(k), 1.0f, a.data(), int(leading(a)), b.data(), int(leading(b)),
                    accumulate ? 1.0f : 0.0f, c.data(), int(std::max<int64_t>(c.outerStride(), n)));
        return;
    }
#endif
    eigen_gemm(a, transpose_a, b, transpose_b, c, accumulate);
}
