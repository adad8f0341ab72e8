// Sequences: a sample [T, C] is T positions of C channels, position-major in its row.
// A layer acting on each position alike (dense, layer_norm) sees a batch of n such rows
// as one (n*T, C) matrix over the same memory: one product instead of T.
#pragma once

#include <backplane/backplane.hpp>

#include <string>

namespace sequence {

// The (rows * cols / width, width) view of a batch whose rows are contiguous, as the
// core's buffers are (a matrix, or its top rows).
template <class Ref>
auto positions(Ref&& m, Eigen::Index width) {
    if (m.rows() > 1 && m.outerStride() != m.cols())
        throw bp::Error("a sequence layer needs a batch with contiguous rows");
    using Scalar = std::remove_pointer_t<decltype(m.data())>;
    using Target = std::conditional_t<std::is_const_v<Scalar>, const bp::Matrix, bp::Matrix>;
    return Eigen::Map<Target>(m.data(), m.rows() * (m.cols() / width), width);
}

}  // namespace sequence
