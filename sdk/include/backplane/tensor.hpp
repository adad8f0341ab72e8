// Tensors and shapes: the data types every component exchanges.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <initializer_list>
#include <numeric>
#include <stdexcept>
#include <type_traits>
#include <string>
#include <vector>

namespace bp {

// A batch is a row-major float matrix with one row per sample. A sample's own
// structure (e.g. {C,H,W} for an image) is carried beside it as a Shape; the row
// holds the sample flattened in that order.
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixRef = Eigen::Ref<Matrix>;               // writable view, e.g. buf.topRows(n)
using ConstMatrixRef = Eigen::Ref<const Matrix>;    // read-only view

// The per-sample shape of a tensor, outermost dimension first.
struct Shape {
    std::vector<int64_t> dims;

    Shape() = default;
    Shape(std::initializer_list<int64_t> d) : dims(d) {}
    explicit Shape(std::vector<int64_t> d) : dims(std::move(d)) {}

    // Elements per sample: the width of a batch row.
    int64_t size() const {
        return std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>());
    }
    std::size_t rank() const { return dims.size(); }
    bool operator==(const Shape&) const = default;

    // "[3, 28, 28]"
    std::string str() const {
        std::string s = "[";
        for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
        return s + "]";
    }
};

// A batch of sequences seen one position per row: a sample [T, C] is T positions of C
// channels, position-major in its row, so n such rows are an (n*T, C) matrix over the
// same memory. A layer acting on each position alike (dense, layer_norm, an activation)
// makes one product or pass instead of T. The batch's rows must be contiguous, as the
// core's buffers (a matrix, or its top rows) are.
template <class Ref>
auto per_position(Ref&& m, Eigen::Index width) {
    if (m.rows() > 1 && m.outerStride() != m.cols()) throw std::logic_error("per_position: rows are not contiguous");
    using Scalar = std::remove_pointer_t<decltype(m.data())>;
    using Target = std::conditional_t<std::is_const_v<Scalar>, const Matrix, Matrix>;
    return Eigen::Map<Target>(m.data(), m.rows() * (m.cols() / width), width);
}

// What a parameter is to its layer, so that an optimizer can treat kinds apart (weight
// decay on weights only, the AdamW practice).
enum class ParameterRole { weight, bias, norm_gain, norm_shift, embedding, other };

// A named tensor: a layer's parameter (with its role), a buffer, an optimizer's state entry.
struct NamedTensor {
    std::string name;
    Matrix value;
    ParameterRole role = ParameterRole::weight;
};

}  // namespace bp
