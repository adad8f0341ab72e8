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

// One term of a correlation's sum, relative to the output at (oh, ow): the input plane
// it reads (a phase of a strided input; 0 otherwise), at row oh + row and column ow +
// col of that plane's bordered buffer, times the weight at index `weight` of the K x K
// window (row-major).
struct Tap {
    int plane, row, col, weight;
};

// The taps of a correlation: `count` of them, read from `planes` planes per channel,
// weights in whole windows of `weights`.
// Stride 1: every (i, j) of the window, in order; `Flip` pairs input (i, j) with weight
// (K-1-i, K-1-j), as the input gradient's correlation of the output gradient does.
template <int K, bool Flip = false>
struct Window {
    static constexpr int count = K * K, planes = 1, weights = K * K;
    static constexpr Tap tap(int t) { return {0, t / K, t % K, Flip ? count - 1 - t : t}; }
};

// Stride 2, a 3x3 window, padding 1: input row 2 oh + i - 1 is row oh - 1 (i = 0) or oh
// (i = 1, 2) of phase (i + 1) % 2, the rows of that parity; a phase's buffer has one
// border row above, so its row oh + (i != 0). The same for columns. Four planes per
// channel: phase (row parity, column parity) at 2 p + q.
struct Strided {
    static constexpr int count = 9, planes = 4, weights = 9;
    static constexpr Tap tap(int t) {
        const int i = t / 3, j = t % 3;
        return {(i + 1) % 2 * 2 + (j + 1) % 2, i != 0, j != 0, t};
    }
};

// The input gradient of that layer at phase (P, Q), rows 2 a + P and columns 2 b + Q:
// the taps whose input falls there (row parity P: i = 1 if P = 0, i = 0 and 2 if P = 1),
// reading the output gradient at row a + 1 (i = 0) or a (i = 1, 2): its buffer has one
// border row below. The same for columns.
template <int P, int Q>
struct StridedPhase {
    static constexpr int rows = P == 0 ? 1 : 2, cols = Q == 0 ? 1 : 2;
    static constexpr int count = rows * cols, planes = 1, weights = 9;
    static constexpr Tap tap(int t) {
        const int i = P == 0 ? 1 : 2 * (t / cols), j = Q == 0 ? 1 : 2 * (t % cols);
        return {0, i == 0, j == 0, i * 3 + j};
    }
};

// out[f] for the FB filters from f0, output rows oh0 to oh0 + R - 1 (out_h x out_w floats
// each, plus shift[f] when there is one) := the correlation of `in` (channels x planes x
// rows x pitch, zero-bordered) with w ([c][weight][out_channels]). A row is Q vectors; the
// FB x R x Q sums stay in registers over every channel and tap, so each weight loaded
// serves R x Q vectors and each input vector up to FB x R sums.
template <class Taps, int Q, int FB, int R>
void correlate_block(const float* in, int64_t channels, int64_t rows, int64_t pitch, const float* w,
                     int64_t out_channels, int64_t f0, const float* shift, int64_t oh0, int64_t out_h, int64_t out_w,
                     float* out) {
    Vec acc[FB][R][Q] = {};
    for (int64_t c = 0; c < channels; ++c) {
        const float* at = in + (c * Taps::planes * rows + oh0) * pitch;
        const float* wc = w + c * Taps::weights * out_channels + f0;
#pragma GCC unroll 25   // every tap's offsets constants
        for (int t = 0; t < Taps::count; ++t) {
            const Tap tap = Taps::tap(t);
            const float* wt = wc + tap.weight * out_channels;
            for (int r = 0; r < R; ++r) {
                const float* window = at + (tap.plane * rows + tap.row + r) * pitch + tap.col;
                Vec x[Q];
                for (int q = 0; q < Q; ++q) x[q] = load(window + q * kLanes);
                for (int b = 0; b < FB; ++b)
                    for (int q = 0; q < Q; ++q) acc[b][r][q] += x[q] * wt[b];
            }
        }
    }
    for (int b = 0; b < FB; ++b)
        for (int r = 0; r < R; ++r) {
            float* row = out + ((f0 + b) * out_h + oh0 + r) * out_w;
            for (int q = 0; q < Q; ++q) {
                if (shift) acc[b][r][q] += shift[f0 + b];
                store(acc[b][r][q], std::min<int64_t>(kLanes, out_w - q * kLanes), row + q * kLanes);
            }
        }
}

// Every output row for the FB filters from f0: blocks of R rows, then one at a time.
template <class Taps, int Q, int FB, int R>
void correlate(const float* in, int64_t channels, int64_t rows, int64_t pitch, const float* w, int64_t out_channels,
               int64_t f0, const float* shift, int64_t out_h, int64_t out_w, float* out) {
    int64_t oh = 0;
    for (; oh + R <= out_h; oh += R)
        correlate_block<Taps, Q, FB, R>(in, channels, rows, pitch, w, out_channels, f0, shift, oh, out_h, out_w, out);
    for (; oh < out_h; ++oh)
        correlate_block<Taps, Q, FB, 1>(in, channels, rows, pitch, w, out_channels, f0, shift, oh, out_h, out_w, out);
}

// Every output channel: blocks of FB filters and R rows, then the filters left one at a
// time. The blocks are the fastest measured here (docs/performance.md): a row of one
// vector takes 8 filters by 2 rows (1.15-1.2x 16 by 1 forward: a weight loaded serves two
// vectors); longer rows one row (2 or 3 rows of two vectors, with 4 or 6 filters: 0.5-0.9x).
template <class Taps, int Q>
void correlate_all(const float* in, int64_t channels, int64_t rows, int64_t pitch, const float* w,
                   int64_t out_channels, const float* shift, int64_t out_h, int64_t out_w, float* out) {
    constexpr int FB = Q <= 2 ? 8 : 4, R = Q == 1 ? 2 : 1;
    int64_t f = 0;
    for (; f + FB <= out_channels; f += FB)
        correlate<Taps, Q, FB, R>(in, channels, rows, pitch, w, out_channels, f, shift, out_h, out_w, out);
    for (; f < out_channels; ++f)
        correlate<Taps, Q, 1, R>(in, channels, rows, pitch, w, out_channels, f, shift, out_h, out_w, out);
}

// The same, rows of out_w outputs as 1-4 vectors.
template <class Taps>
void correlate_rows(const float* in, int64_t channels, int64_t rows, int64_t pitch, const float* w,
                    int64_t out_channels, const float* shift, int64_t out_h, int64_t out_w, float* out) {
    switch ((out_w + kLanes - 1) / kLanes) {
        case 1: return correlate_all<Taps, 1>(in, channels, rows, pitch, w, out_channels, shift, out_h, out_w, out);
        case 2: return correlate_all<Taps, 2>(in, channels, rows, pitch, w, out_channels, shift, out_h, out_w, out);
        case 3: return correlate_all<Taps, 3>(in, channels, rows, pitch, w, out_channels, shift, out_h, out_w, out);
        case 4: return correlate_all<Taps, 4>(in, channels, rows, pitch, w, out_channels, shift, out_h, out_w, out);
    }
    throw std::logic_error("direct_conv: rows of more than 4 vectors");
}

// dw[c][weight][f] += sum over the outputs of dz[oh][ow][f] * (x's term of that weight),
// for the FV x 16 filters from f0 (vectors; dz is channel-last, rows of `lanes` filters)
// and the CB channels from c0: one sample's sums in registers, added to dw at the end, as
// im2col's product adds each sample's.
template <class Taps, int CB, int FV>
void weight_gradient(const float* x, int64_t rows, int64_t pitch, const float* dz, int64_t lanes, int64_t out_h,
                     int64_t out_w, int64_t f0, int64_t c0, float* dw) {
    Vec acc[CB][Taps::count][FV] = {};
    for (int64_t oh = 0; oh < out_h; ++oh)
        for (int64_t ow = 0; ow < out_w; ++ow) {
            Vec d[FV];
            for (int v = 0; v < FV; ++v) d[v] = load(dz + (oh * out_w + ow) * lanes + f0 + v * kLanes);
            for (int cb = 0; cb < CB; ++cb) {
                const float* at = x + ((c0 + cb) * Taps::planes * rows + oh) * pitch + ow;
#pragma GCC unroll 25
                for (int t = 0; t < Taps::count; ++t) {
                    const Tap tap = Taps::tap(t);
                    const float in = at[(tap.plane * rows + tap.row) * pitch + tap.col];
                    for (int v = 0; v < FV; ++v) acc[cb][t][v] += d[v] * in;
                }
            }
        }
    for (int cb = 0; cb < CB; ++cb)
        for (int t = 0; t < Taps::count; ++t)
            for (int v = 0; v < FV; ++v) {
                float* sum = dw + ((c0 + cb) * Taps::weights + Taps::tap(t).weight) * lanes + f0 + v * kLanes;
                store(load(sum) + acc[cb][t][v], kLanes, sum);
            }
}

// Every channel and filter. A 3x3 window takes two vectors of filters at a time where
// there are two (each input value loaded serves both: the backward ran 1.03-1.07x as fast
// as with two channels of one vector), then two channels of one vector; a 5x5 window one
// channel of one vector. At most 18 or 25 sums in registers.
template <class Taps>
void weight_gradient_all(const float* x, int64_t rows, int64_t pitch, const float* dz, int64_t lanes,
                         int64_t channels, int64_t out_h, int64_t out_w, float* dw) {
    // Both blockings fit the registers only for a window of up to 9 taps.
    constexpr bool small_window = Taps::count <= 9;
    constexpr int CB = small_window ? 2 : 1;
    int64_t f = 0;
    if constexpr (small_window)
        for (; f + 2 * kLanes <= lanes; f += 2 * kLanes)
            for (int64_t c = 0; c < channels; ++c)
                weight_gradient<Taps, 1, 2>(x, rows, pitch, dz, lanes, out_h, out_w, f, c, dw);
    for (; f < lanes; f += kLanes) {
        int64_t c = 0;
        for (; c + CB <= channels; c += CB)
            weight_gradient<Taps, CB, 1>(x, rows, pitch, dz, lanes, out_h, out_w, f, c, dw);
        for (; c < channels; ++c) weight_gradient<Taps, 1, 1>(x, rows, pitch, dz, lanes, out_h, out_w, f, c, dw);
    }
}

// The 16 x 16 block at `in` (rows in_pitch floats apart) transposed into `out` (rows
// out_pitch apart), in registers: four rounds, each interleaving pairs of rows by 1, 2,
// 4 and 8 elements.
void transpose_block(const float* in, int64_t in_pitch, float* out, int64_t out_pitch) {
    Vec r[kLanes], s[kLanes];
    for (int i = 0; i < kLanes; ++i) r[i] = load(in + i * in_pitch);
    for (int i = 0; i < kLanes; i += 2) {
        s[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
        s[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
    }
    for (int b = 0; b < kLanes; b += 4)
        for (int j = b; j < b + 2; ++j) {
            r[j] = __builtin_shufflevector(s[j], s[j + 2], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
            r[j + 2] = __builtin_shufflevector(s[j], s[j + 2], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
        }
    for (int b = 0; b < kLanes; b += 8)
        for (int j = b; j < b + 4; ++j) {
            s[j] = __builtin_shufflevector(r[j], r[j + 4], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
            s[j + 4] = __builtin_shufflevector(r[j], r[j + 4], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
        }
    for (int j = 0; j < 8; ++j) {
        r[j] = __builtin_shufflevector(s[j], s[j + 8], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
        r[j + 8] = __builtin_shufflevector(s[j], s[j + 8], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    }
    for (int i = 0; i < kLanes; ++i) store(r[i], kLanes, out + i * out_pitch);
}

// out[o][f] = in[f][o] for the `channels` rows of `area` values of `in`, out's rows
// `lanes` apart (the lanes past `channels` left as they are): whole 16 x 16 blocks in
// registers, the rest one by one. (Element by element over in's rows, every write went
// to another cache line: with the copy of x, a third of dW's time at 32 channels, 28x28.)
void channel_last(const float* in, int64_t channels, int64_t area, int64_t lanes, float* out) {
    const int64_t whole_o = area / kLanes * kLanes, whole_f = channels / kLanes * kLanes;
    for (int64_t o = 0; o < whole_o; o += kLanes)
        for (int64_t f = 0; f < whole_f; f += kLanes)
            transpose_block(in + f * area + o, area, out + o * lanes + f, lanes);
    for (int64_t f = 0; f < channels; ++f)
        for (int64_t o = f < whole_f ? whole_o : 0; o < area; ++o) out[o * lanes + f] = in[f * area + o];
}

// f(Window<3>{}) or f(Window<5>{}): a stride-1 layer's taps, as the template wants them.
template <bool Flip = false, class F>
void with_window(int64_t k, F&& f) {
    if (k == 3) f(Window<3, Flip>{});
    else f(Window<5, Flip>{});
}

int64_t round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

}  // namespace

bool DirectConv::supports(const ImageGeometry& g) {
    const bool stride_1 = g.stride == 1 && (g.kernel == 3 || g.kernel == 5);
    const bool stride_2 = g.stride == 2 && g.kernel == 3 && g.padding == 1;
    // Stride 1 correlates the image's own rows; stride 2 its phases, as wide as the outputs.
    return (stride_1 && g.width <= 4 * kLanes && g.out_width <= 4 * kLanes) ||
           (stride_2 && g.out_width <= 4 * kLanes);
}

bool DirectConv::fills_lanes(const ImageGeometry& g) {
    const int64_t vectors = (g.out_width + kLanes - 1) / kLanes;
    return supports(g) && 4 * g.out_width >= 3 * vectors * kLanes;
}

DirectConv::DirectConv(const ImageGeometry& g, int64_t filters) : g_(g), filters_(filters) {
    if (!supports(g)) throw std::logic_error("direct_conv: unsupported geometry");
    const int64_t k = g.kernel, out_chunks = (g.out_width + kLanes - 1) / kLanes;
    if (g.stride == 1) {
        // The last vector of a row of outputs reads k - 1 columns past its 16 outputs.
        const int64_t border = k - 1 - g.padding, in_chunks = (g.width + kLanes - 1) / kLanes;
        input_ = {g.channels, 1, g.height + 2 * g.padding,
                  round_up(std::max(out_chunks * kLanes + k - 1, g.width + 2 * g.padding), kLanes)};
        gradient_ = {filters, 1, g.out_height + 2 * border,
                     round_up(std::max(in_chunks * kLanes + k - 1, g.out_width + 2 * border), kLanes)};
    } else {
        // The input's phases, at most out_height x out_width each, after a border row and
        // column; the output gradient whole, with a border row and column after. The input
        // gradient's phases are at most as wide as the outputs.
        input_ = {g.channels, 4, g.out_height + 1, round_up(out_chunks * kLanes + 1, kLanes)};
        gradient_ = {filters, 1, g.out_height + 1, input_.pitch};
    }
}

DirectConv::Buffers DirectConv::buffers() const {
    const int64_t k2 = g_.kernel * g_.kernel;
    Buffers b;
    b.x.resize(size_t(input_.size()));
    b.dz.resize(size_t(gradient_.size()));
    b.dz_last.resize(size_t(g_.out_area() * filter_lanes()));
    b.w.resize(size_t(filters_ * g_.channels * k2));
    b.transposed.resize(b.w.size());
    b.dw.resize(size_t(g_.channels * k2 * filter_lanes()));
    if (g_.stride == 2) b.phase.resize(size_t(g_.channels * g_.out_area()));
    return b;
}

int64_t DirectConv::filter_lanes() const { return round_up(filters_, kLanes); }

void DirectConv::fill_input(const float* image, float* plane) const {
    const int64_t H = g_.height, W = g_.width, rows = input_.rows, pitch = input_.pitch;
    for (int64_t c = 0; c < g_.channels; ++c) {
        const float* in = image + c * H * W;
        if (g_.stride == 1) {
            for (int64_t h = 0; h < H; ++h)
                std::copy_n(in + h * W, W, plane + (c * rows + h + g_.padding) * pitch + g_.padding);
            continue;
        }
        for (int64_t h = 0; h < H; ++h) {   // row h is row h / 2 of phase h % 2, after the border row
            float* even = plane + ((c * 4 + h % 2 * 2) * rows + h / 2 + 1) * pitch + 1;
            float* odd = even + rows * pitch;
            for (int64_t w = 0; w + 1 < W; w += 2) even[w / 2] = in[h * W + w], odd[w / 2] = in[h * W + w + 1];
            if (W % 2) even[W / 2] = in[h * W + W - 1];
        }
    }
}

void DirectConv::fill_gradient(const float* dz, float* plane) const {
    const int64_t at = g_.stride == 1 ? g_.kernel - 1 - g_.padding : 0;
    for (int64_t f = 0; f < filters_; ++f)
        for (int64_t h = 0; h < g_.out_height; ++h)
            std::copy_n(dz + (f * g_.out_height + h) * g_.out_width, g_.out_width,
                        plane + (f * gradient_.rows + h + at) * gradient_.pitch + at);
}

void DirectConv::forward(const bp::Matrix& w, const bp::Matrix& bias, bp::ConstMatrixRef x, bp::MatrixRef z,
                         Buffers& b) const {
    const int64_t F = filters_, C = g_.channels, k2 = g_.kernel * g_.kernel;
    for (int64_t f = 0; f < F; ++f)
        for (int64_t c = 0; c < C; ++c)
            for (int64_t t = 0; t < k2; ++t) {
                const float v = w(f, c * k2 + t);
                b.w[(c * k2 + t) * F + f] = v;
                b.transposed[(f * k2 + t) * C + c] = v;
            }
    const float* shift = bias.size() ? bias.data() : nullptr;
    const int64_t rows = input_.rows, pitch = input_.pitch, OH = g_.out_height, OW = g_.out_width;
    for (int64_t n = 0; n < x.rows(); ++n) {
        fill_input(x.row(n).data(), b.x.data());
        auto run = [&](auto taps) {
            correlate_rows<decltype(taps)>(b.x.data(), C, rows, pitch, b.w.data(), F, shift, OH, OW, z.row(n).data());
        };
        if (g_.stride == 2) run(Strided{});
        else with_window(g_.kernel, run);
    }
}

void DirectConv::backward(bp::ConstMatrixRef x, bp::ConstMatrixRef dz, bp::MatrixRef dx, bp::Matrix& dw,
                          Buffers& b) const {
    const int64_t F = filters_, C = g_.channels, k2 = g_.kernel * g_.kernel, lanes = filter_lanes(),
                  area = g_.out_area();
    std::fill(b.dw.begin(), b.dw.end(), 0.0f);
    for (int64_t n = 0; n < x.rows(); ++n) {
        fill_input(x.row(n).data(), b.x.data());
        const float* grad = dz.row(n).data();
        channel_last(grad, F, area, lanes, b.dz_last.data());
        auto run_dw = [&](auto taps) {
            weight_gradient_all<decltype(taps)>(b.x.data(), input_.rows, input_.pitch, b.dz_last.data(), lanes, C,
                                                g_.out_height, g_.out_width, b.dw.data());
        };
        if (g_.stride == 2) run_dw(Strided{});
        else with_window(g_.kernel, run_dw);
        if (dx.rows() == 0) continue;
        fill_gradient(grad, b.dz.data());
        if (g_.stride == 2) input_gradient_phases(b, dx.row(n).data());
        else
            with_window<true>(g_.kernel, [&](auto taps) {
                correlate_rows<decltype(taps)>(b.dz.data(), F, gradient_.rows, gradient_.pitch, b.transposed.data(),
                                               C, nullptr, g_.height, g_.width, dx.row(n).data());
            });
    }
    for (int64_t f = 0; f < F; ++f)
        for (int64_t t = 0; t < C * k2; ++t) dw(f, t) = b.dw[t * lanes + f];
}

// Stride 2: each phase of dx from its taps of dz, then interleaved into dx.
void DirectConv::input_gradient_phases(Buffers& b, float* dx) const {
    const int64_t H = g_.height, W = g_.width;
    auto one_phase = [&](auto taps, int64_t p, int64_t q) {
        const int64_t rows = (H - p + 1) / 2, cols = (W - q + 1) / 2;
        if (rows == 0 || cols == 0) return;   // a 1-wide or 1-high input has no odd phase
        correlate_rows<decltype(taps)>(b.dz.data(), filters_, gradient_.rows, gradient_.pitch, b.transposed.data(),
                                       g_.channels, nullptr, rows, cols, b.phase.data());
        for (int64_t c = 0; c < g_.channels; ++c)
            for (int64_t a = 0; a < rows; ++a)
                for (int64_t v = 0; v < cols; ++v)
                    dx[(c * H + 2 * a + p) * W + 2 * v + q] = b.phase[(c * rows + a) * cols + v];
    };
    one_phase(StridedPhase<0, 0>{}, 0, 0);
    one_phase(StridedPhase<0, 1>{}, 0, 1);
    one_phase(StridedPhase<1, 0>{}, 1, 0);
    one_phase(StridedPhase<1, 1>{}, 1, 1);
}
