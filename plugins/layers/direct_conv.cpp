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

// lanes[((f * channels + c) * K + i) * K + j] += dz[f][oh][ow] * x[c][oh + i][ow + j]
// over the output positions, lane by lane (ow = 16 q + lane), for the FB filters from
// f0. dz and x are zero-bordered planes; dz's lanes past the outputs are its zero
// border, so the x they meet adds nothing.
template <int K, int FB>
void weight_lanes(const float* x, int64_t x_rows, int64_t x_pitch, const float* dz, int64_t dz_rows,
                  int64_t dz_pitch, int64_t dz_pad, int64_t channels, int64_t f0, int64_t out_h, int64_t chunks,
                  float* lanes) {
    for (int64_t c = 0; c < channels; ++c) {
        Vec acc[FB][K][K];
        for (int b = 0; b < FB; ++b)
            for (int i = 0; i < K; ++i)
                for (int j = 0; j < K; ++j) acc[b][i][j] = load(lanes + ((((f0 + b) * channels + c) * K + i) * K + j) * kLanes);
        for (int64_t oh = 0; oh < out_h; ++oh)
            for (int64_t q = 0; q < chunks; ++q) {
                Vec d[FB];
                for (int b = 0; b < FB; ++b)
                    d[b] = load(dz + ((f0 + b) * dz_rows + oh + dz_pad) * dz_pitch + dz_pad + q * kLanes);
                const float* window = x + (c * x_rows + oh) * x_pitch + q * kLanes;
                for (int i = 0; i < K; ++i)
                    for (int j = 0; j < K; ++j) {
                        const Vec v = load(window + i * x_pitch + j);
                        for (int b = 0; b < FB; ++b) acc[b][i][j] += d[b] * v;
                    }
            }
        for (int b = 0; b < FB; ++b)
            for (int i = 0; i < K; ++i)
                for (int j = 0; j < K; ++j)
                    store(acc[b][i][j], kLanes, lanes + ((((f0 + b) * channels + c) * K + i) * K + j) * kLanes);
    }
}

template <int K>
void weight_lanes_all(const float* x, int64_t x_rows, int64_t x_pitch, const float* dz, int64_t dz_rows,
                      int64_t dz_pitch, int64_t dz_pad, int64_t filters, int64_t channels, int64_t out_h,
                      int64_t chunks, float* lanes) {
    constexpr int FB = K == 3 ? 2 : 1;   // FB * K * K sums in registers
    int64_t f = 0;
    for (; f + FB <= filters; f += FB)
        weight_lanes<K, FB>(x, x_rows, x_pitch, dz, dz_rows, dz_pitch, dz_pad, channels, f, out_h, chunks, lanes);
    for (; f < filters; ++f)
        weight_lanes<K, 1>(x, x_rows, x_pitch, dz, dz_rows, dz_pitch, dz_pad, channels, f, out_h, chunks, lanes);
}

// The lanes' sum, pairwise in a fixed order.
float lane_sum(Vec v) {
    for (int width = kLanes / 2; width > 0; width /= 2)
        for (int l = 0; l < width; ++l) v[l] += v[l + width];
    return v[0];
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
    b.w.resize(size_t(filters_ * g_.channels * k2));
    b.flipped.resize(b.w.size());
    b.dw.resize(b.w.size() * kLanes);
    return b;
}

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
    const int64_t F = filters_, C = g_.channels, K = g_.kernel;
    const Plane &px = forward_, &pd = backward_;
    float* lanes = b.dw.data();
    std::fill(b.dw.begin(), b.dw.end(), 0.0f);
    for (int64_t n = 0; n < x.rows(); ++n) {
        px.fill(x.row(n).data(), b.x.data());
        pd.fill(dz.row(n).data(), b.dz.data());
        if (K == 3)
            weight_lanes_all<3>(b.x.data(), px.rows, px.pitch, b.dz.data(), pd.rows, pd.pitch, pd.pad, F, C,
                                px.out_h, px.chunks, lanes);
        else
            weight_lanes_all<5>(b.x.data(), px.rows, px.pitch, b.dz.data(), pd.rows, pd.pitch, pd.pad, F, C,
                                px.out_h, px.chunks, lanes);
        if (dx.rows() == 0) continue;
        if (K == 3)
            correlate_rows<3>(pd.chunks, b.dz.data(), F, pd.rows, pd.pitch, b.flipped.data(), C, nullptr, pd.out_h,
                              pd.out_w, dx.row(n).data());
        else
            correlate_rows<5>(pd.chunks, b.dz.data(), F, pd.rows, pd.pitch, b.flipped.data(), C, nullptr, pd.out_h,
                              pd.out_w, dx.row(n).data());
    }
    for (int64_t f = 0; f < F; ++f)
        for (int64_t t = 0; t < C * K * K; ++t) dw(f, t) = lane_sum(load(lanes + (f * C * K * K + t) * kLanes));
}
