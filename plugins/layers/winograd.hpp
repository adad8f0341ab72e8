// Winograd's minimal filtering F(4x4, r x r) for stride-1 convolutions (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016): conv2d's fast path.
//
// Each 4x4 block of outputs is computed from an (r+3)x(r+3) input tile in a transformed
// space where the convolution is an elementwise product: for every one of the
// (r+3)^2 transformed positions p, all filters against all channels is one matrix
// product U[p] (filters x channels) * V[p] (channels x tiles of the shard). A 5x5 kernel
// takes 64 multiply-adds per 16 outputs and channel instead of 400, a 3x3 one 36 instead
// of 144; the transforms around the products are linear maps of each tile. The backward
// pass runs the adjoints of the same maps, so its gradients are exact for what forward
// computes. Its rounding error is larger than im2col's: up to 1.2e-5 of each quantity's
// scale against a convolution in double, where im2col's is 4.4e-7 (tests/test_layers.cpp).
// Like every product here it depends only on the shard's data (its rows, how many there
// are): same bits at any thread count.
#pragma once

#include <backplane/tensor.hpp>

#include <memory>
#include <vector>

#include "image.hpp"

class Winograd {
public:
    // Stride 1 and a kernel of 3 or 5 (the transforms' interpolation points are chosen
    // for those; other sizes go through im2col).
    static bool supports(const ImageGeometry& g);

    Winograd(const ImageGeometry& g, int64_t filters);
    ~Winograd();

    // Estimated work of one sample, in multiply-adds weighted by how fast each part
    // runs (the transforms' small fixed-size products run at about half the speed of
    // the large ones): conv2d compares it with im2col's to pick the algorithm.
    double cost() const;

    // The shard's transformed weights and one block of its tiles and products, sized
    // for `max_rows` samples.
    struct Buffers {
        std::vector<float> u, du;   // (r+3)^2 blocks of filters x channels: weights, their gradient
        std::vector<float> v, dv, m;   // (r+3)^2 blocks of channels (v, dv) or filters (m) x a block of tiles
    };
    Buffers buffers(int64_t max_rows) const;

    // z = conv(x, w) + bias, rows (filters, OH, OW); w is (filters, C*r*r); bias (1, filters) or empty.
    void forward(const bp::Matrix& w, const bp::Matrix& bias, bp::ConstMatrixRef x, bp::MatrixRef z,
                 Buffers& b) const;
    // From x and dz = dL/dz, after forward ran on the same x with these buffers (it left
    // the transformed weights, and the transformed tiles when the shard's fit in one
    // block; more are transformed again: a whole shard's would not stay in the cache for
    // 28x28 images): dw = dL/dw (overwritten) and, when dx has rows, dx = dL/dx. The
    // buffers stay as forward left them, so backward may run again.
    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef dz, bp::MatrixRef dx, bp::Matrix& dw, Buffers& b) const;

    struct Impl;   // one per kernel size, in winograd.cpp

private:
    std::unique_ptr<const Impl> impl_;
};
