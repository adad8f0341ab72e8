// The built-in layers' matrix products, single-threaded: the trainer's shards are the
// parallelism, so a product never starts threads of its own.
//
// The backend is a build option (BACKPLANE_BLAS, docs/architecture.md): OpenBLAS's sgemm
// or Eigen's product. Either way the result depends on the operands' shapes and values
// only, never on which thread computes it, so training stays bitwise the same at any
// thread count. The two backends round differently: a run's bits belong to its build.
#pragma once

#include <backplane/tensor.hpp>

// c = op(a) op(b), or c += op(a) op(b) when `accumulate`; op transposes when asked.
// Operands are row-major with unit inner stride (matrices, maps, blocks of rows or of
// columns: the outer stride is the leading dimension).
void gemm(bp::ConstMatrixRef a, bool transpose_a, bp::ConstMatrixRef b, bool transpose_b, bp::MatrixRef c,
          bool accumulate = false);

