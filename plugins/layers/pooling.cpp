// Pooling over [C, H, W] images: max_pool2d, avg_pool2d, global_avg_pool.
// Output rows are (C, OH, OW), channel-major like the input.
#include <backplane/backplane.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "image.hpp"
#include "layers.hpp"

namespace {

bp::Schema window_schema() {
    return bp::Schema()
        .integer("kernel", 2, 1, 64, "square window size")
        .integer("stride", 0, 0, 64, "step between windows; 0: the kernel size")
        .integer("padding", 0, 0, 32, "border added on each side (ignored by max, counted as zeros by avg)");
}

class Pool2d : public bp::Layer {
public:
    explicit Pool2d(const bp::Params& p)
        : kernel_(p.integer("kernel")),
          stride_(p.integer("stride") > 0 ? p.integer("stride") : p.integer("kernel")),
          padding_(p.integer("padding")) {}

    bp::Shape build(const bp::Shape& input, const bp::Random&) override {
        g_ = ImageGeometry::make(input, kernel_, stride_, padding_, name());
        return bp::Shape{g_.channels, g_.out_height, g_.out_width};
    }

protected:
    virtual std::string name() const = 0;
    int64_t kernel_, stride_, padding_;
    ImageGeometry g_{};
};

// y = the largest input in each window; dx routes dy to that input (the first
// largest, in window order, on ties).
class MaxPool2d final : public Pool2d {
public:
    using Pool2d::Pool2d;

    struct Argmax final : bp::Workspace {
        Eigen::Matrix<int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> index;   // (rows, outputs)
    };
    std::unique_ptr<bp::Workspace> make_workspace(int64_t max_rows) const override {
        auto ws = std::make_unique<Argmax>();
        ws->index.resize(max_rows, g_.channels * g_.out_area());
        return ws;
    }

    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace* ws, const bp::StepContext&) const override {
        auto& arg = static_cast<Argmax&>(*ws).index;
        if (kernel_ == 2 && stride_ == 2 && padding_ == 0) return forward_2x2(x, y, arg);
        for (Eigen::Index r = 0; r < x.rows(); ++r) {
            const float* xr = x.row(r).data();   // raw rows: this loop is the layer's whole cost
            float* yr = y.row(r).data();
            int32_t* ar = arg.row(r).data();
            std::fill(ar, ar + y.cols(), -1);
            // Each window starts at its first element; a NaN wins and stays (!(x <= y)
            // is true for NaN x), so a diverging run shows as NaN instead of being hidden.
            for_each_window(g_, [&](int64_t out, int64_t in) {
                if (ar[out] < 0 || (!std::isnan(yr[out]) && !(xr[in] <= yr[out])))
                    yr[out] = xr[in], ar[out] = int32_t(in);
            });
        }
    }

    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix>, bp::Workspace* ws, const bp::StepContext&) const override {
        if (dx.rows() == 0) return;
        const auto& arg = static_cast<Argmax&>(*ws).index;
        dx.setZero();
        for (Eigen::Index r = 0; r < dy.rows(); ++r)
            for (Eigen::Index o = 0; o < dy.cols(); ++o) dx(r, arg(r, o)) += dy(r, o);
    }

private:
    // The common 2x2, stride 2 window, unrolled: the same choices as the general loop
    // (window order, first of equals, NaN wins), without its per-element bookkeeping.
    void forward_2x2(bp::ConstMatrixRef x, bp::MatrixRef y,
                     Eigen::Matrix<int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>& arg) const {
        const int64_t W = g_.width, H = g_.height, OW = g_.out_width;
        for (Eigen::Index r = 0; r < x.rows(); ++r) {
            const float* xr = x.row(r).data();
            float* yr = y.row(r).data();
            int32_t* ar = arg.row(r).data();
            for (int64_t c = 0; c < g_.channels; ++c)
                for (int64_t oh = 0; oh < g_.out_height; ++oh, yr += OW, ar += OW) {
                    const int32_t top = int32_t((c * H + 2 * oh) * W);
                    pool_row_2x2(xr + top, xr + top + W, yr, ar, OW, top, int32_t(W));
                }
        }
    }

    // One row of 2x2 windows over input rows r0 and r1: four windows at a time in
    // vector registers (GCC's and Clang's vector extension; __builtin_shufflevector
    // needs GCC 12, Debian 12's); a row not a multiple of four ends with the last four
    // windows again, overlapping (each window's result is its own, so it is written
    // twice alike), and rows of fewer go one by one. Rows are short (4 to 14 windows in
    // the Fashion models): a loop the compiler vectorised itself ran these at scalar
    // speed with a mispredicted branch per window, the CNN's largest cost after the
    // convolutions (measured). One by one, the last three of the Fashion CNN's 7-window
    // rows made its second pooling 2.4k thread-us a step forward; with the last four
    // again, 0.5k (run --profile, 2026-12-06).
    static void pool_row_2x2(const float* r0, const float* r1, float* y, int32_t* at, int64_t n, int32_t top,
                             int32_t width) {
        auto four = [&](int64_t o) {
            using F4 = float __attribute__((vector_size(16)));
            using I4 = int32_t __attribute__((vector_size(16)));
            F4 lo, hi, lo1, hi1;
            std::memcpy(&lo, r0 + 2 * o, sizeof lo);
            std::memcpy(&hi, r0 + 2 * o + 4, sizeof hi);
            std::memcpy(&lo1, r1 + 2 * o, sizeof lo1);
            std::memcpy(&hi1, r1 + 2 * o + 4, sizeof hi1);
            const F4 next[3] = {__builtin_shufflevector(lo, hi, 1, 3, 5, 7),
                                __builtin_shufflevector(lo1, hi1, 0, 2, 4, 6),
                                __builtin_shufflevector(lo1, hi1, 1, 3, 5, 7)};
            F4 best = __builtin_shufflevector(lo, hi, 0, 2, 4, 6);
            I4 pick = {0, 0, 0, 0};
            for (int k = 0; k < 3; ++k) {
                const I4 take = ~(next[k] <= best) & (best == best);   // best == best: not NaN
                best = take ? next[k] : best;
                pick = take ? I4{k + 1, k + 1, k + 1, k + 1} : pick;
            }
            const I4 first = I4{0, 2, 4, 6} + int32_t(top + 2 * o);
            const I4 index = first + (pick & 1) + (pick >> 1) * width;
            std::memcpy(y + o, &best, sizeof best);
            std::memcpy(at + o, &index, sizeof index);
        };
        if (n >= 4) {
            for (int64_t o = 0; o + 4 <= n; o += 4) four(o);
            if (n % 4) four(n - 4);
            return;
        }
        for (int64_t o = 0; o < n; ++o) {
            float best = r0[2 * o], pick = 0;
            const float next[3] = {r0[2 * o + 1], r1[2 * o], r1[2 * o + 1]};
            for (int k = 0; k < 3; ++k) {
                const bool take = !(next[k] <= best) && best == best;
                best = take ? next[k] : best;
                pick = take ? float(k + 1) : pick;
            }
            y[o] = best;
            const int32_t p = int32_t(pick);
            at[o] = top + int32_t(2 * o) + (p & 1) + (p >> 1) * width;
        }
    }

    std::string name() const override { return "max_pool2d"; }
};

// y = mean of each window, padding counted as zeros (PyTorch's count_include_pad).
class AvgPool2d final : public Pool2d {
public:
    using Pool2d::Pool2d;

    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext&) const override {
        const float inv = 1.0f / float(kernel_ * kernel_);
        y.setZero();
        for (Eigen::Index r = 0; r < x.rows(); ++r) {
            const float* xr = x.row(r).data();
            float* yr = y.row(r).data();
            for_each_window(g_, [&](int64_t out, int64_t in) { yr[out] += xr[in] * inv; });
        }
    }

    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix>, bp::Workspace*, const bp::StepContext&) const override {
        if (dx.rows() == 0) return;
        const float inv = 1.0f / float(kernel_ * kernel_);
        dx.setZero();
        for (Eigen::Index r = 0; r < dy.rows(); ++r) {
            const float* dyr = dy.row(r).data();
            float* dxr = dx.row(r).data();
            for_each_window(g_, [&](int64_t out, int64_t in) { dxr[in] += dyr[out] * inv; });
        }
    }

private:
    std::string name() const override { return "avg_pool2d"; }
};

// [C, H, W] -> [C]: the mean of each channel.
class GlobalAvgPool final : public bp::Layer {
public:
    bp::Shape build(const bp::Shape& input, const bp::Random&) override {
        if (input.rank() != 3) throw bp::Error("global_avg_pool needs images [channels, height, width], got " + input.str());
        channels_ = input.dims[0];
        area_ = input.dims[1] * input.dims[2];
        return bp::Shape{channels_};
    }
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext&) const override {
        for (Eigen::Index r = 0; r < x.rows(); ++r)
            y.row(r) = Eigen::Map<const bp::Matrix>(x.row(r).data(), channels_, area_).rowwise().mean().transpose();
    }
    // dx(c, .) = dy(c) / area
    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix>, bp::Workspace*, const bp::StepContext&) const override {
        if (dx.rows() == 0) return;
        for (Eigen::Index r = 0; r < dy.rows(); ++r)
            for (int64_t c = 0; c < channels_; ++c) dx.row(r).segment(c * area_, area_).setConstant(dy(r, c) / float(area_));
    }

private:
    int64_t channels_ = 0, area_ = 0;
};

}  // namespace

void register_pooling(bp::Manifest& manifest) {
    const std::vector<bp::CheckCase> checks = {
        {bp::Shape{2, 4, 6}},
        {bp::Shape{1, 5, 5}, {{"kernel", int64_t(3)}, {"stride", int64_t(2)}, {"padding", int64_t(1)}}},
    };
    manifest.layer<MaxPool2d>("max_pool2d", "the maximum of each window, per channel", window_schema(), checks)
        .layer<AvgPool2d>("avg_pool2d", "the mean of each window, per channel (padding counts as zeros)",
                          window_schema(), checks)
        .layer<GlobalAvgPool>("global_avg_pool", "[C, H, W] -> [C]: the mean of each channel", bp::Schema(),
                              {{bp::Shape{3, 2, 4}}});
}
