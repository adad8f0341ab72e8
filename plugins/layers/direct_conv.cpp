#include "direct_conv.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace {

// 16 floats (GCC's vector extension: one AVX-512 register here, two AVX halves or
// scalars elsewhere).
constexpr int kLanes = 16;
using Vec = float __attribute__((vector_size(kLanes * sizeof(float))));

Vec load(const float* p) {
    Vec v;
    std::memcpy(&v, p, sizeof(Vec));
    return v;
}

void store(const Vec& v, int64_t lanes, float* p) {
    if (lanes == kLanes) std::memcpy(p, &v, sizeof(Vec));
    else
        for (int64_t l = 0; l < lanes; ++l) p[l] = v[l];
}

// out[f] for the FB filters from f0, every output row (out_h x out_w floats each, plus
// shift[f] when there is one) := the correlation of `in` (channels x rows x pitch,
// zero-bordered) with w ([c][i][j][out_channels]). A row is Q vectors; the FB x Q sums
// stay in registers over every channel and window position.
template <int K, int Q, int FB>
void correlate(const float* in, int64_t channels, int64_t rows, int64_t pitch, const float* w, int64_t out_channels,
               int64_t f0, const float* shift, int64_t out_h, int64_t out_w, float* out) {
    for (int64_t oh = 0; oh < out_h; ++oh) {
        Vec acc[FB][Q] = {};
        for (int64_t c = 0; c < channels; ++c) {
            const float* window = in + (c * rows + oh) * pitch;
            const float* wc = w + c * K * K * out_channels + f0;
            for (int i = 0; i < K; ++i)
                for (int j = 0; j < K; ++j) {
                    Vec x[Q];
                    for (int q = 0; q < Q; ++q) x[q] = load(window + i * pitch + q * kLanes + j);
                    const float* wij = wc + (i * K + j) * out_channels;
                    for (int b = 0; b < FB; ++b)
                        for (int q = 0; q < Q; ++q) acc[b][q] += x[q] * wij[b];
                }
        }
        for (int b = 0; b < FB; ++b) {
            float* row = out + ((f0 + b) * out_h + oh) * out_w;
            for (int q = 0; q < Q; ++q) {
                if (shift) acc[b][q] += shift[f0 + b];
                store(acc[b][q], std::min<int64_t>(kLanes, out_w - q * kLanes), row + q * kLanes);
            }
        }
    }
}

// Every output channel: blocks of as many filters as keep FB x Q sums within the 32
// vector registers, then one at a time.
template <int K, int Q>
void correlate_all(const float* in, int64_t channels, int64_t rows, int64_t pitch, const float* w,
                   int64_t out_channels, const float* shift, int64_t out_h, int64_t out_w, float* out) {
    constexpr int FB = Q == 1 ? 16 : Q == 2 ? 8 : 4;
    int64_t f = 0;
    for (; f + FB <= out_channels; f += FB)
        correlate<K, Q, FB>(in, channels, rows, pitch, w, out_channels, f, shift, out_h, out_w, out);
    for (; f < out_channels; ++f)
        correlate<K, Q, 1>(in, channels, rows, pitch, w, out_channels, f, shift, out_h, out_w, out);
}

template <int K>
void correlate_rows(int64_t chunks, const float* in, int64_t channels, int64_t rows, int64_t pitch, const float* w,
                    int64_t out_channels, const float* shift, int64_t out_h, int64_t out_w, float* out) {
    switch (chunks) {
        case 1: return correlate_all<K, 1>(in, channels, rows, pitch, w, out_channels, shift, out_h, out_w, out);
        case 2: return correlate_all<K, 2>(in, channels, rows, pitch, w, out_channels, shift, out_h, out_w, out);
        case 3: return correlate_all<K, 3>(in, channels, rows, pitch, w, out_channels, shift, out_h, out_w, out);
        case 4: return correlate_all<K, 4>(in, channels, rows, pitch, w, out_channels, shift, out_h, out_w, out);
    }
    throw std::logic_error("direct_conv: rows of more than 4 vectors");
}

// dw[c][i][j][f] += sum over the outputs of dz[oh][ow][f] * x[c][oh + i][ow + j], for
// the 16 filters from f0 (a vector; dz is channel-last, rows of `lanes` filters) and the
// CB channels from c0: one sample's sums in registers, added to dw at the end, as
// im2col's product adds each sample's.
template <int K, int CB>
void weight_gradient(const float* x, int64_t rows, int64_t pitch, const float* dz, int64_t lanes, int64_t out_h,
                     int64_t out_w, int64_t f0, int64_t c0, float* dw) {
    Vec acc[CB][K][K] = {};
    for (int64_t oh = 0; oh < out_h; ++oh)
        for (int64_t ow = 0; ow < out_w; ++ow) {
            const Vec d = load(dz + (oh * out_w + ow) * lanes + f0);
            for (int cb = 0; cb < CB; ++cb) {
                const float* window = x + ((c0 + cb) * rows + oh) * pitch + ow;
                for (int i = 0; i < K; ++i)
                    for (int j = 0; j < K; ++j) acc[cb][i][j] += d * window[i * pitch + j];
            }
        }
    for (int cb = 0; cb < CB; ++cb)
        for (int i = 0; i < K; ++i)
            for (int j = 0; j < K; ++j) {
                float* sum = dw + (((c0 + cb) * K + i) * K + j) * lanes + f0;
                store(load(sum) + acc[cb][i][j], kLanes, sum);
            }
}

template <int K>
void weight_gradient_all(const float* x, int64_t rows, int64_t pitch, const float* dz, int64_t lanes,
                         int64_t channels, int64_t out_h, int64_t out_w, float* dw) {
    constexpr int CB = K == 3 ? 2 : 1;   // CB * K * K sums in registers
    for (int64_t f = 0; f < lanes; f += kLanes) {
        int64_t c = 0;
        for (; c + CB <= channels; c += CB)
            weight_gradient<K, CB>(x, rows, pitch, dz, lanes, out_h, out_w, f, c, dw);
        for (; c < channels; ++c) weight_gradient<K, 1>(x, rows, pitch, dz, lanes, out_h, out_w, f, c, dw);
    }
}

int64_t round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

}  // namespace

DirectConv::Plane::Plane(int64_t channels_, int64_t height_, int64_t width_, int64_t pad_, int64_t k)
    : channels(channels_),
      height(height_),
      width(width_),
      pad(pad_),
      out_h(height_ + 2 * pad_ - k + 1),
      out_w(width_ + 2 * pad_ - k + 1),
      chunks((out_w + kLanes - 1) / kLanes),
      rows(height_ + 2 * pad_),
      // The last vector of a row of outputs reads k - 1 columns past its 16 outputs.
      pitch(round_up(std::max(chunks * kLanes + k - 1, width_ + 2 * pad_), kLanes)) {}

void DirectConv::Plane::fill(const float* image, float* padded) const {
    for (int64_t c = 0; c < channels; ++c)
        for (int64_t h = 0; h < height; ++h)
            std::copy_n(image + (c * height + h) * width, width, padded + (c * rows + h + pad) * pitch + pad);
}

bool DirectConv::supports(const ImageGeometry& g) {
    return g.stride == 1 && (g.kernel == 3 || g.kernel == 5) && g.out_width <= 4 * kLanes &&
           g.width <= 4 * kLanes;
}

bool DirectConv::fills_lanes(const ImageGeometry& g) {
    const int64_t vectors = (g.out_width + kLanes - 1) / kLanes;
    return supports(g) && 4 * g.out_width >= 3 * vectors * kLanes;
}

DirectConv::DirectConv(const ImageGeometry& g, int64_t filters)
    : g_(g),
      filters_(filters),
      forward_(g.channels, g.height, g.width, g.padding, g.kernel),
      backward_(filters, g.out_height, g.out_width, g.kernel - 1 - g.padding, g.kernel) {
    if (!supports(g)) throw std::logic_error("direct_conv: unsupported geometry");
}

DirectConv::Buffers DirectConv::buffers() const {
    const int64_t k2 = g_.kernel * g_.kernel;
    Buffers b;
    b.x.resize(size_t(forward_.size()));
    b.dz.resize(size_t(backward_.size()));
    b.dz_last.resize(size_t(g_.out_area() * filter_lanes()));
    b.w.resize(size_t(filters_ * g_.channels * k2));
    b.flipped.resize(b.w.size());
    b.dw.resize(size_t(g_.channels * k2 * filter_lanes()));
    return b;
}

int64_t DirectConv::filter_lanes() const { return round_up(filters_, kLanes); }

void DirectConv::forward(const bp::Matrix& w, const bp::Matrix& bias, bp::ConstMatrixRef x, bp::MatrixRef z,
                         Buffers& b) const {
    const int64_t F = filters_, C = g_.channels, K = g_.kernel;
    for (int64_t f = 0; f < F; ++f)
        for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < K; ++i)
                for (int64_t j = 0; j < K; ++j) {
                    const float v = w(f, (c * K + i) * K + j);
                    b.w[((c * K + i) * K + j) * F + f] = v;
                    b.flipped[((f * K + K - 1 - i) * K + K - 1 - j) * C + c] = v;
                }
    const float* shift = bias.size() ? bias.data() : nullptr;
    const Plane& p = forward_;
    for (int64_t n = 0; n < x.rows(); ++n) {
        p.fill(x.row(n).data(), b.x.data());
        if (K == 3)
            correlate_rows<3>(p.chunks, b.x.data(), C, p.rows, p.pitch, b.w.data(), F, shift, p.out_h, p.out_w,
                              z.row(n).data());
        else
            correlate_rows<5>(p.chunks, b.x.data(), C, p.rows, p.pitch, b.w.data(), F, shift, p.out_h, p.out_w,
                              z.row(n).data());
    }
}

void DirectConv::backward(bp::ConstMatrixRef x, bp::ConstMatrixRef dz, bp::MatrixRef dx, bp::Matrix& dw,
                          Buffers& b) const {
    const int64_t F = filters_, C = g_.channels, K = g_.kernel, lanes = filter_lanes(), area = g_.out_area();
    const Plane &px = forward_, &pd = backward_;
    std::fill(b.dw.begin(), b.dw.end(), 0.0f);
    for (int64_t n = 0; n < x.rows(); ++n) {
        px.fill(x.row(n).data(), b.x.data());
        const float* grad = dz.row(n).data();
        for (int64_t f = 0; f < F; ++f)   // channel-last; the lanes past F stay zero
            for (int64_t o = 0; o < area; ++o) b.dz_last[o * lanes + f] = grad[f * area + o];
        if (K == 3)
            weight_gradient_all<3>(b.x.data(), px.rows, px.pitch, b.dz_last.data(), lanes, C, px.out_h, px.out_w,
                                   b.dw.data());
        else
            weight_gradient_all<5>(b.x.data(), px.rows, px.pitch, b.dz_last.data(), lanes, C, px.out_h, px.out_w,
                                   b.dw.data());
        if (dx.rows() == 0) continue;
        pd.fill(grad, b.dz.data());
        if (K == 3)
            correlate_rows<3>(pd.chunks, b.dz.data(), F, pd.rows, pd.pitch, b.flipped.data(), C, nullptr, pd.out_h,
                              pd.out_w, dx.row(n).data());
        else
            correlate_rows<5>(pd.chunks, b.dz.data(), F, pd.rows, pd.pitch, b.flipped.data(), C, nullptr, pd.out_h,
                              pd.out_w, dx.row(n).data());
    }
    for (int64_t f = 0; f < F; ++f)
        for (int64_t t = 0; t < C * K * K; ++t) dw(f, t) = b.dw[t * lanes + f];
}
