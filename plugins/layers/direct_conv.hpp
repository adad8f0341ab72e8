// Direct convolution on whole vectors for a 3x3 or 5x5 kernel of stride 1, and a 3x3
// kernel of stride 2 and padding 1 (a ResNet's downsampling): conv2d's path for images a
// few vectors wide with few channels (the ResNet's 16 channels at 28x28), where
// Winograd's transformed tiles cost more in memory traffic than they save in
// multiply-adds, and im2col copies every input k^2 times at stride 1.
//
// Each sample is copied into a zero-bordered buffer, rows padded to whole vectors, so that
// a row of outputs is a few vectors (16 outputs each) and every term of the sum is one
// vector load times one weight, broadcast: out[f][oh][ow..ow+15] += in[c][oh+i][ow+j..]
// * w[f][c][i][j], a block of filters and rows accumulating in registers. A stride-2 input is
// copied as its four phases (even and odd rows and columns), so that each term again
// reads consecutive inputs: one phase at an offset of 0 or 1. The input gradient is the
// same correlation of the output gradient (padded by k-1-p) with the flipped, transposed
// weights; at stride 2, one correlation per phase of it, with the terms that land there.
// The weights' gradient has the filters in the lanes: the output gradient, copied
// channel-last, times each input value broadcast, one sample's sums in registers. Every
// sum runs in an order fixed by the shapes: the same bits at any thread count, and a
// sample's outputs do not depend on its shard.
#pragma once

#include <backplane/tensor.hpp>

#include <vector>

#include "image.hpp"

class DirectConv {
public:
    // Stride 1 and a kernel of 3 or 5, or stride 2, a kernel of 3 and padding 1; outputs
    // at most 64 wide, images at most 64 (stride 1) or 128 (stride 2).
    static bool supports(const ImageGeometry& g);
    // Supports it, and outputs fill at least 3/4 of each row's vectors (rows 12-16, 24-32,
    // 36-48 or 48-64 wide): conv2d's auto takes it there.
    static bool fills_lanes(const ImageGeometry& g);

    DirectConv(const ImageGeometry& g, int64_t filters);

    struct Buffers {
        std::vector<float> x, dz;        // one sample, zero-bordered: forward's input, the gradient's
        std::vector<float> dz_last;      // one sample's output gradient channel-last, [oh][ow][filter lanes]
        std::vector<float> w, transposed;   // the weights as [c][i][j][filters] and as [f][i][j][channels]
        std::vector<float> dw;              // the weights' gradient as [c][i][j][filter lanes]
        std::vector<float> phase;           // stride 2: one phase of the input gradient
    };
    Buffers buffers() const;

    // z = conv(x, w) + bias, rows (filters, OH, OW); w is (filters, C*k*k); bias (1, filters) or empty.
    void forward(const bp::Matrix& w, const bp::Matrix& bias, bp::ConstMatrixRef x, bp::MatrixRef z,
                 Buffers& b) const;
    // From x and dz = dL/dz (w as forward last had it, in b): dw = dL/dw (overwritten) and,
    // when dx has rows, dx = dL/dx.
    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef dz, bp::MatrixRef dx, bp::Matrix& dw, Buffers& b) const;

private:
    // A correlation's input: channels x planes x rows x pitch floats, zero-bordered.
    struct Plane {
        int64_t channels, planes, rows, pitch;
        int64_t size() const { return channels * planes * rows * pitch; }
    };

    int64_t filter_lanes() const;   // the filters rounded up to whole vectors
    // One sample's input into b.x: stride 1, the image at row and column `padding`;
    // stride 2, its four phases (rows and columns even or odd), each after a border row
    // and column.
    void fill_input(const float* image, float* plane) const;
    // One sample's output gradient into b.dz: stride 1, at row and column k-1-p; stride
    // 2, at 0, a border row and column after.
    void fill_gradient(const float* dz, float* plane) const;
    void input_gradient_phases(Buffers& b, float* dx) const;

    ImageGeometry g_;
    int64_t filters_;
    Plane input_{}, gradient_{};   // x as forward reads it; dz as the input gradient's correlation reads it
};
