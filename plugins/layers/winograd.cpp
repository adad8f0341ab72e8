#include "winograd.hpp"

#include <Eigen/QR>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "gemm.hpp"

namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<RowMajor>;
using ConstMap = Eigen::Map<const RowMajor>;


// A block of columns: its tiles and products take about this much memory (the
// transforms scatter into (r+3)^2 places, all of which should stay in the cache), but
// no fewer columns than make the products worth calling.
constexpr int64_t kBlockBytes = 4 << 20;
constexpr int64_t kMinBlockColumns = 64;

// The distance between two of a buffer's (r+3)^2 blocks, for blocks of `size` floats.
// A tile's values go to the same place in every block: blocks a power of two apart
// would put all of them in one cache set (measured: the transforms then took most of
// the layer's time), so the stride is an odd number of 64-byte lines.
int64_t block_stride(int64_t size) {
    const int64_t lines = (size + 15) / 16;
    return (lines | 1) * 16;
}

// Tiles are transformed kLanes at a time (the data's: consecutive columns; the weights':
// consecutive channels), each value a vector of its kLanes tiles' copies (GCC's vector
// extension: AVX-512 here, two AVX halves or scalars elsewhere), so that the transforms
// run at vector speed and a transformed value goes to its block in one contiguous store.
// One tile at a time ran at scalar speed and scattered single floats (most of the
// layer's time, measured), and Eigen's products of 8x8 tiles went through its blocked
// GEMM, packing and all (a third of it).
constexpr int kLanes = 16;
using Vec = float __attribute__((vector_size(kLanes * sizeof(float))));
template <int Rows, int Cols>
using Lanes = Vec[Rows][Cols];

// out = l * in * r for every lane; l and r are any (Eigen) matrices, transposes included.
template <int O1, int I1, int I2, int O2, class L, class Rm>
void sandwich_lanes(const L& l, const Lanes<I1, I2>& in, const Rm& r, Lanes<O1, O2>& out) {
    Lanes<O1, I2> half;
    for (int a = 0; a < O1; ++a) {
        for (int b = 0; b < I2; ++b) half[a][b] = Vec{};
        for (int k = 0; k < I1; ++k) {
            const float c = l(a, k);
            for (int b = 0; b < I2; ++b) half[a][b] += c * in[k][b];
        }
    }
    for (int a = 0; a < O1; ++a) {
        for (int b = 0; b < O2; ++b) out[a][b] = Vec{};
        for (int k = 0; k < I2; ++k)
            for (int b = 0; b < O2; ++b) out[a][b] += half[a][k] * r(k, b);
    }
}

// The three transforms of F(m, r) in one dimension, with a = m + r - 1 points:
// y = at * ((g * w) .* (bt * d)) is the correlation y_i = sum_k w_k d_{i+k} of an
// a-long input d with an r-long filter w. at and g evaluate polynomials at the points
// 0, 1, -1, 2, -2, 1/2, -1/2 (the first a-1, the small ones that keep float error
// low) and at infinity; bt, the interpolation, is what makes the identity exact:
// solved for in double and checked, so any (m, r) with m + r - 2 <= 7 points gets
// correct transforms.
struct Transforms1d {
    Eigen::MatrixXd at, g, bt;
};

Transforms1d make_transforms(int m, int r) {
    static constexpr double points[] = {0, 1, -1, 2, -2, 0.5, -0.5};
    const int a = m + r - 1;
    if (a - 1 > int(std::size(points))) throw std::logic_error("winograd: too few interpolation points");
    Transforms1d t{Eigen::MatrixXd::Zero(m, a), Eigen::MatrixXd::Zero(a, r), {}};
    for (int j = 0; j < a - 1; ++j) {
        double scale = 1;   // prod over the other points of (p_j - p_l): Lagrange's denominator
        for (int l = 0; l < a - 1; ++l)
            if (l != j) scale *= points[j] - points[l];
        for (int i = 0; i < m; ++i) t.at(i, j) = std::pow(points[j], i);
        for (int k = 0; k < r; ++k) t.g(j, k) = std::pow(points[j], k) / scale;
    }
    t.at(m - 1, a - 1) = 1;   // infinity: the leading coefficients
    t.g(a - 1, r - 1) = 1;
    // sum_j at(i, j) g(j, k) bt(j, l) = [l == i + k] for every i, k, l.
    Eigen::MatrixXd e(m * r, a), identity = Eigen::MatrixXd::Zero(m * r, a);
    for (int i = 0; i < m; ++i)
        for (int k = 0; k < r; ++k) {
            for (int j = 0; j < a; ++j) e(i * r + k, j) = t.at(i, j) * t.g(j, k);
            identity(i * r + k, i + k) = 1;
        }
    t.bt = e.colPivHouseholderQr().solve(identity);
    if ((e * t.bt - identity).norm() > 1e-9) throw std::logic_error("winograd: transforms do not solve F(m, r)");
    return t;
}

}  // namespace

struct Winograd::Impl {
    virtual ~Impl() = default;
    virtual double cost() const = 0;
    virtual Buffers buffers(int64_t max_rows) const = 0;
    virtual void forward(const bp::Matrix& w, const bp::Matrix& bias, bp::ConstMatrixRef x, bp::MatrixRef z,
                         Buffers& b) const = 0;
    virtual void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef dz, bp::MatrixRef dx, bp::Matrix& dw,
                          Buffers& b) const = 0;
};

namespace {

// F(4x4, R x R) with tiles of A x A inputs. Buffers hold P = A*A blocks: block p of u is
// filters x channels, of v channels x columns, of m filters x columns. Column j of a
// shard is a (sample, tile) pair, sample * tiles + tile row * tiles_w + tile column; v
// and m hold one block of consecutive columns at a time.
template <int R>
class Kernel final : public Winograd::Impl {
public:
    static constexpr int M = 4, A = M + R - 1, P = A * A;   // F(4x4, R x R): M outputs per tile side

    Kernel(const ImageGeometry& geometry, int64_t filters)
        : g_(geometry),
          filters_(filters),
          tiles_w_((g_.out_width + M - 1) / M),
          tiles_(((g_.out_height + M - 1) / M) * tiles_w_) {
        const Transforms1d t = make_transforms(M, R);
        at_ = t.at.cast<float>();
        gm_ = t.g.cast<float>();
        bt_ = t.bt.cast<float>();
    }

    double cost() const override {
        const double c = double(g_.channels), f = double(filters_), t = double(tiles_);
        const double products = P * f * c * t;
        const double transforms = c * t * 2.0 * A * A * A + f * t * (M * A * A + M * M * A);
        return products + 2.0 * transforms;
    }

    Winograd::Buffers buffers(int64_t max_rows) const override {
        const int64_t columns = std::min(block_columns(), max_rows * tiles_);
        Winograd::Buffers b;
        b.u.resize(size_t(P * block_stride(filters_ * g_.channels)));
        b.du.resize(b.u.size());
        b.v.resize(size_t(P * block_stride(g_.channels * columns)));
        b.dv.resize(b.v.size());
        b.m.resize(size_t(P * block_stride(filters_ * columns)));
        return b;
    }

    void forward(const bp::Matrix& w, const bp::Matrix& bias, bp::ConstMatrixRef x, bp::MatrixRef z,
                 Winograd::Buffers& b) const override {
        const int64_t F = filters_, C = g_.channels, su = block_stride(F * C);
        for (int64_t f = 0; f < F; ++f)   // u = the weights' transform, channels in lanes
            for (int64_t c = 0; c < C; c += kLanes) {
                const int lanes = int(std::min<int64_t>(kLanes, C - c));
                Lanes<R, R> filter = {};
                for (int l = 0; l < lanes; ++l)
                    for (int i = 0; i < R; ++i)
                        for (int j = 0; j < R; ++j) filter[i][j][l] = w(f, ((c + l) * R + i) * R + j);
                Lanes<A, A> u;
                sandwich_lanes(gm_, filter, gm_.transpose(), u);
                store_lanes(u, lanes, b.u.data() + f * C + c, su);
            }
        for_each_block(x.rows(), [&](int64_t first, int64_t count) {
            const int64_t sv = block_stride(C * count), sm = block_stride(F * count);
            transform_inputs(x, first, count, b.v.data(), sv);
            for (int p = 0; p < P; ++p)   // m = u v
                gemm(ConstMap(b.u.data() + p * su, F, C), false, ConstMap(b.v.data() + p * sv, C, count), false,
                     Map(b.m.data() + p * sm, F, count));
            for (int64_t f = 0; f < F; ++f) {   // z = the output transform of m, plus the bias
                const float shift = bias.size() ? bias(0, f) : 0.0f;
                for (int64_t j = 0; j < count; j += kLanes) {
                    const Group group = lane_group(first + j, int(std::min<int64_t>(kLanes, count - j)));
                    Lanes<A, A> m;
                    load_lanes(b.m.data() + f * count + j, sm, group.lanes, m);
                    Lanes<M, M> y;
                    sandwich_lanes(at_, m, at_.transpose(), y);
                    for (int l = 0; l < group.lanes; ++l) write_outputs(y, l, shift, group, f, z);
                }
            }
        });
    }

    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef dz, bp::MatrixRef dx, bp::Matrix& dw,
                  Winograd::Buffers& b) const override {
        const int64_t F = filters_, C = g_.channels, su = block_stride(F * C);
        if (x.rows() == 0) {
            dw.setZero();
            return;
        }
        if (dx.rows() > 0) dx.setZero();
        const bool one_block = x.rows() * tiles_ <= block_columns();
        for_each_block(x.rows(), [&](int64_t first, int64_t count) {
            const int64_t sv = block_stride(C * count), sm = block_stride(F * count);
            if (!one_block) transform_inputs(x, first, count, b.v.data(), sv);   // else v is still forward's
            for (int64_t f = 0; f < F; ++f)   // m = the output transform's adjoint of dz
                for (int64_t j = 0; j < count; j += kLanes) {
                    const Group group = lane_group(first + j, int(std::min<int64_t>(kLanes, count - j)));
                    Lanes<M, M> d = {};
                    for (int l = 0; l < group.lanes; ++l) read_outputs(dz, group, l, f, d);
                    Lanes<A, A> m;
                    sandwich_lanes(at_.transpose(), d, at_, m);
                    store_lanes(m, group.lanes, b.m.data() + f * count + j, sm);
                }
            for (int p = 0; p < P; ++p)   // du (+)= m v^T, block after block
                gemm(ConstMap(b.m.data() + p * sm, F, count), false, ConstMap(b.v.data() + p * sv, C, count), true,
                     Map(b.du.data() + p * su, F, C), first > 0);
            if (dx.rows() == 0) return;   // this block is done: no one needs dx
            for (int p = 0; p < P; ++p)   // dv = u^T m (v stays forward's: backward may run again)
                gemm(ConstMap(b.u.data() + p * su, F, C), true, ConstMap(b.m.data() + p * sm, F, count), false,
                     Map(b.dv.data() + p * sv, C, count));
            for (int64_t c = 0; c < C; ++c)   // dx += the input transform's adjoint of dv
                for (int64_t j = 0; j < count; j += kLanes) {
                    const Group group = lane_group(first + j, int(std::min<int64_t>(kLanes, count - j)));
                    Lanes<A, A> dv, d;
                    load_lanes(b.dv.data() + c * count + j, sv, group.lanes, dv);
                    sandwich_lanes(bt_.transpose(), dv, bt_, d);
                    for (int l = 0; l < group.lanes; ++l) add_input_tile(d, l, group, c, dx);
                }
        });
        for (int64_t f = 0; f < F; ++f)   // dw = the weights' transform's adjoint of du
            for (int64_t c = 0; c < C; c += kLanes) {
                const int lanes = int(std::min<int64_t>(kLanes, C - c));
                Lanes<A, A> du;
                load_lanes(b.du.data() + f * C + c, su, lanes, du);
                Lanes<R, R> d;
                sandwich_lanes(gm_.transpose(), du, gm_, d);
                for (int l = 0; l < lanes; ++l)
                    for (int i = 0; i < R; ++i)
                        for (int j = 0; j < R; ++j) dw(f, ((c + l) * R + i) * R + j) = d[i][j][l];
            }
    }

private:
    // A shard's columns (sample, tile) go through in blocks small enough that a block's
    // transformed tiles and products stay in the cache; the whole shard at once made
    // the transforms wait on memory for 28x28 images (measured).
    int64_t block_columns() const {
        const int64_t column_bytes = P * (g_.channels + filters_) * int64_t(sizeof(float));
        return std::max<int64_t>(kMinBlockColumns, kBlockBytes / column_bytes);
    }

    // Calls block(first column, count) over the n samples' columns, in order.
    template <class Block>
    void for_each_block(int64_t n, Block&& block) const {
        const int64_t columns = n * tiles_, step = block_columns();
        for (int64_t first = 0; first < columns; first += step) block(first, std::min(step, columns - first));
    }

    // `lanes` consecutive columns of a shard from `column`: each lane's sample and its
    // tile's row and column among the tiles. Column j is tile j % tiles of sample
    // j / tiles: the samples are counted on from the first lane's (two divisions per
    // lane, one for its sample and one for its tile's origin, were a visible part of
    // the layer's time; one is left).
    struct Group {
        int lanes;
        int64_t sample[kLanes], tile_row[kLanes], tile_col[kLanes];
    };
    Group lane_group(int64_t column, int lanes) const {
        Group g{lanes, {}, {}, {}};
        int64_t sample = column / tiles_, tile = column % tiles_;
        for (int l = 0; l < lanes; ++l) {
            g.sample[l] = sample;
            g.tile_row[l] = tile / tiles_w_;
            g.tile_col[l] = tile % tiles_w_;
            if (++tile == tiles_) tile = 0, ++sample;
        }
        return g;
    }

    // v's blocks p (channels x count) := the input transform of columns [first, first + count).
    void transform_inputs(bp::ConstMatrixRef x, int64_t first, int64_t count, float* v, int64_t sv) const {
        for (int64_t c = 0; c < g_.channels; ++c)
            for (int64_t j = 0; j < count; j += kLanes) {
                const Group group = lane_group(first + j, int(std::min<int64_t>(kLanes, count - j)));
                Lanes<A, A> d = {}, t;
                for (int l = 0; l < group.lanes; ++l) load_input_tile(x, group, l, c, d);
                sandwich_lanes(bt_, d, bt_.transpose(), t);
                store_lanes(t, group.lanes, v + c * count + j, sv);
            }
    }

    // Position p of `lanes` consecutive columns, from each of the P blocks `stride` apart
    // (the lanes past them zero). Whole vectors are copied with a fixed size: a copy of
    // a variable size compiled to rep movs, most of the 3x3 layer's time (measured).
    static void load_lanes(const float* in, int64_t stride, int lanes, Lanes<A, A>& t) {
        for (int p = 0; p < P; ++p) {
            Vec& v = t[p / A][p % A];
            if (lanes == kLanes) {
                std::memcpy(&v, in + p * stride, sizeof(Vec));
                continue;
            }
            v = Vec{};
            for (int l = 0; l < lanes; ++l) v[l] = in[p * stride + l];
        }
    }

    static void store_lanes(const Lanes<A, A>& t, int lanes, float* out, int64_t stride) {
        for (int p = 0; p < P; ++p) {
            const Vec& v = t[p / A][p % A];
            if (lanes == kLanes) std::memcpy(out + p * stride, &v, sizeof(Vec));
            else
                for (int l = 0; l < lanes; ++l) out[p * stride + l] = v[l];
        }
    }

    // The rows and columns [i0, i1) x [j0, j1) of lane l's A x A window inside the
    // image, whose first row and column are h0, w0 (negative in the top and left
    // padding): the rest is padding, or lies past the bottom and right edges where the
    // last tiles reach beyond the outputs, and reads as zero.
    struct Window {
        int64_t h0, w0, i0, i1, j0, j1;
    };
    Window window(const Group& g, int l) const {
        const int64_t h0 = g.tile_row[l] * M - g_.padding, w0 = g.tile_col[l] * M - g_.padding;
        return {h0, w0, std::max<int64_t>(0, -h0), std::min<int64_t>(A, g_.height - h0), std::max<int64_t>(0, -w0),
                std::min<int64_t>(A, g_.width - w0)};
    }

    // Lane l of d := its tile's input window in channel c of x (d is zero where the
    // window is outside).
    void load_input_tile(bp::ConstMatrixRef x, const Group& g, int l, int64_t c, Lanes<A, A>& d) const {
        const float* image = x.row(g.sample[l]).data() + c * g_.height * g_.width;
        const Window w = window(g, l);
        for (int64_t i = w.i0; i < w.i1; ++i)
            for (int64_t j = w.j0; j < w.j1; ++j) d[i][j][l] = image[(w.h0 + i) * g_.width + w.w0 + j];
    }

    // The adjoint of load_input_tile: adds lane l of d into dx's channel c where it lies inside.
    void add_input_tile(const Lanes<A, A>& d, int l, const Group& g, int64_t c, bp::MatrixRef dx) const {
        float* image = dx.row(g.sample[l]).data() + c * g_.height * g_.width;
        const Window w = window(g, l);
        for (int64_t i = w.i0; i < w.i1; ++i)
            for (int64_t j = w.j0; j < w.j1; ++j) image[(w.h0 + i) * g_.width + w.w0 + j] += d[i][j][l];
    }

    // Writes lane l's M x M outputs, plus shift, where they lie inside filter f's output image in z.
    void write_outputs(const Lanes<M, M>& y, int l, float shift, const Group& g, int64_t f, bp::MatrixRef z) const {
        float* out = z.row(g.sample[l]).data() + f * g_.out_area();
        const int64_t oh = g.tile_row[l] * M, ow = g.tile_col[l] * M;
        const int64_t rows = std::min<int64_t>(M, g_.out_height - oh), cols = std::min<int64_t>(M, g_.out_width - ow);
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) out[(oh + i) * g_.out_width + ow + j] = y[i][j][l] + shift;
    }

    // The adjoint of write_outputs: lane l of d := its tile's gradients in filter f's
    // image of dz (d is zero where the tile was cut off).
    void read_outputs(bp::ConstMatrixRef dz, const Group& g, int l, int64_t f, Lanes<M, M>& d) const {
        const float* grad = dz.row(g.sample[l]).data() + f * g_.out_area();
        const int64_t oh = g.tile_row[l] * M, ow = g.tile_col[l] * M;
        const int64_t rows = std::min<int64_t>(M, g_.out_height - oh), cols = std::min<int64_t>(M, g_.out_width - ow);
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) d[i][j][l] = grad[(oh + i) * g_.out_width + ow + j];
    }

    ImageGeometry g_;
    int64_t filters_, tiles_w_, tiles_;
    Eigen::Matrix<float, M, A, Eigen::RowMajor> at_;
    Eigen::Matrix<float, A, R, Eigen::RowMajor> gm_;
    Eigen::Matrix<float, A, A, Eigen::RowMajor> bt_;
};

}  // namespace

bool Winograd::supports(const ImageGeometry& g) { return g.stride == 1 && (g.kernel == 3 || g.kernel == 5); }

Winograd::Winograd(const ImageGeometry& g, int64_t filters) {
    if (g.kernel == 3) impl_ = std::make_unique<Kernel<3>>(g, filters);
    else if (g.kernel == 5) impl_ = std::make_unique<Kernel<5>>(g, filters);
    else throw std::logic_error("winograd: unsupported kernel");
}

Winograd::~Winograd() = default;

double Winograd::cost() const { return impl_->cost(); }

Winograd::Buffers Winograd::buffers(int64_t max_rows) const { return impl_->buffers(max_rows); }

void Winograd::forward(const bp::Matrix& w, const bp::Matrix& bias, bp::ConstMatrixRef x, bp::MatrixRef z,
                       Buffers& b) const {
    impl_->forward(w, bias, x, z, b);
}

void Winograd::backward(bp::ConstMatrixRef x, bp::ConstMatrixRef dz, bp::MatrixRef dx, bp::Matrix& dw,
                        Buffers& b) const {
    impl_->backward(x, dz, dx, dw, b);
}
