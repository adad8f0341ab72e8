#include "gemm.hpp"

#include <algorithm>

#ifdef BACKPLANE_OPENBLAS
#include <cblas.h>

extern "C" void openblas_set_num_threads(int);
#endif

namespace {

// Eigen packs a product's operands into blocks on the stack when they fit in its
// stack limit (EIGEN_STACK_ALLOCATION_LIMIT, 128 KiB), else on the heap. Its blocks
// are never larger than the operands, so a product whose operands each fit allocates
// nothing, whatever the CPU's caches and vector width (which size the blocks).
constexpr int64_t stack_floats = 128 * 1024 / int64_t(sizeof(float));

// c (+)= a b by Eigen, every operand of every product inside the stack limit: cut into
// blocks of rows of a, columns of b and, for a long k, slices of k. The cuts follow the
// shapes alone, so the result's bits do too.
void eigen_gemm(bp::ConstMatrixRef a, bp::ConstMatrixRef b, bp::MatrixRef c, bool accumulate) {
    const int64_t m = c.rows(), n = c.cols(), k = a.cols();
    if (m * k <= stack_floats && k * n <= stack_floats) {
        if (accumulate) c.noalias() += a * b;
        else c.noalias() = a * b;
        return;
    }
    const int64_t kb = std::min<int64_t>(k, 256), mb = stack_floats / kb, nb = stack_floats / kb;
    for (int64_t i = 0; i < m; i += mb)
        for (int64_t j = 0; j < n; j += nb) {
            auto block = c.block(i, j, std::min(mb, m - i), std::min(nb, n - j));
            for (int64_t p = 0; p < k; p += kb) {
                const auto lhs = a.block(i, p, block.rows(), std::min(kb, k - p));
                const auto rhs = b.block(p, j, lhs.cols(), block.cols());
                if (p == 0 && !accumulate) block.noalias() = lhs * rhs;
                else block.noalias() += lhs * rhs;
            }
        }
}

// The plain product, for the build without OpenBLAS (its steps then may allocate).
void eigen_gemm(bp::ConstMatrixRef a, bool transpose_a, bp::ConstMatrixRef b, bool transpose_b, bp::MatrixRef c,
                bool accumulate) {
    auto run = [&](const auto& lhs, const auto& rhs) {
        if (accumulate) c.noalias() += lhs * rhs;
        else c.noalias() = lhs * rhs;
    };
    if (transpose_a && transpose_b) run(a.transpose(), b.transpose());
    else if (transpose_a) run(a.transpose(), b);
    else if (transpose_b) run(a, b.transpose());
    else eigen_gemm(a, b, c, accumulate);
}

#ifdef BACKPLANE_OPENBLAS
// OpenBLAS's own pool would run against the trainer's threads: every call runs on its
// caller. (The pthread build serialises its buffer bookkeeping, so concurrent calls
// from the shards are safe; its serial build does not unless built with USE_LOCKING.)
[[maybe_unused]] const bool single_threaded = (openblas_set_num_threads(1), true);

// OpenBLAS 0.3.21 sends products of up to 100^3 multiply-adds to "small matrix"
// kernels on some CPUs (SkylakeX, Cooperlake), and the one for two untransposed
// row-major operands mallocs a buffer on most calls; the transposed ones never did, on
// any of its kernels (tests/test_allocations.cpp sweeps the shapes through this
// function for each kernel the CPU can run). Those products go to Eigen instead.
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
