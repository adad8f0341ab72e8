// Behaviour the gradient check cannot see: dropout's and batch norm's two modes,
// batch norm's running statistics, and determinism with both in a model; the norms' lane
// sums, max pooling's fast paths, the convolution's algorithms and GELU against plain references.
#include "model/experiment.hpp"
#include "helpers.hpp"
#include "lane_sums.hpp"
#include "model/network.hpp"
#include "train/run.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <vector>

namespace {

bp::Matrix ramp(int64_t rows, int64_t cols) {
    bp::Matrix m(rows, cols);
    for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = float(i % 7) - 2.5f + 0.1f * float(i);
    return m;
}

}  // namespace

TEST_CASE("dropout zeroes about rate of the elements in training and none in evaluation", "[layers]") {
    auto dropout = test::make_layer("dropout", {{"rate", 0.25}});
    dropout->build(bp::Shape{100}, bp::Random(1));
    const bp::Matrix x = bp::Matrix::Ones(40, 100);
    bp::Matrix y(40, 100), again(40, 100);
    const bp::StepContext train{true, bp::Random(7), 0};
    dropout->forward(x, y, nullptr, train);
    const double zeroed = double((y.array() == 0).count()) / double(y.size());
    CHECK(zeroed == Approx(0.25).margin(0.02));
    CHECK(((y.array() == 0) || ((y.array() - 1 / 0.75f).abs() < 1e-6f)).all());
    dropout->forward(x, again, nullptr, train);
    CHECK(again == y);   // the mask is a function of the step's stream and the row

    // The same rows seen as a later shard of the batch get another mask.
    dropout->forward(x, again, nullptr, bp::StepContext{true, bp::Random(7), 40});
    CHECK(again != y);

    dropout->forward(x, y, nullptr, bp::StepContext{false, bp::Random(7), 0});
    CHECK(y == x);
}

TEST_CASE("max pooling lets NaN through instead of hiding it", "[layers]") {
    auto pool = test::make_layer("max_pool2d");
    pool->build(bp::Shape{1, 2, 2}, bp::Random(1));
    auto ws = pool->make_workspace(2);
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    bp::Matrix x(2, 4), y(2, 1), dx(2, 4);
    x << 1, nan, 3, 2,   //
        -inf, -inf, -inf, -inf;
    pool->forward(x, y, ws.get(), bp::StepContext{});
    CHECK(std::isnan(y(0, 0)));
    CHECK(y(1, 0) == -inf);
    bp::Matrix dy = bp::Matrix::Ones(2, 1);
    pool->backward(x, y, dy, dx, {}, ws.get(), bp::StepContext{});
    CHECK(dx.sum() == 2);   // each gradient went to one input of its window
}

TEST_CASE("max pooling 2x2 (its fast path) and 3x3 with stride 2 pick the same inputs as the window order says",
          "[layers]") {
    // A 5x5 channel: 2x2 stride 2 sees four windows (the last row and column unused);
    // ties go to the first of equals in window order, a NaN wins.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    bp::Matrix x(1, 25);
    x << 1, 4, 2, 2, 0,   //
        4, 3, 2, 1, 0,    //
        nan, 0, 7, 7, 0,  //
        5, 6, 7, 7, 0,    //
        0, 0, 0, 0, 9;
    auto routed = [&](int64_t kernel, int64_t stride) {
        auto pool = test::make_layer("max_pool2d", {{"kernel", kernel}, {"stride", stride}});
        const bp::Shape out = pool->build(bp::Shape{1, 5, 5}, bp::Random(1));
        auto ws = pool->make_workspace(1);
        bp::Matrix y(1, out.size()), dx(1, 25);
        pool->forward(x, y, ws.get(), bp::StepContext{});
        bp::Matrix dy(1, out.size());
        for (int64_t i = 0; i < out.size(); ++i) dy(0, i) = float(i + 1);
        pool->backward(x, y, dy, dx, {}, ws.get(), bp::StepContext{});
        return std::pair{y, dx};
    };
    const auto [y2, dx2] = routed(2, 2);
    CHECK(y2(0, 0) == 4);    // 1 4 / 4 3: the first 4
    CHECK(y2(0, 1) == 2);    // 2 2 / 2 1: the first 2
    CHECK(std::isnan(y2(0, 2)));
    CHECK(y2(0, 3) == 7);
    CHECK(dx2(0, 1) == 1);   // window 0's gradient at (0, 1)
    CHECK(dx2(0, 2) == 2);   // window 1's at (0, 2)
    CHECK(dx2(0, 10) == 3);  // the NaN at (2, 0)
    CHECK(dx2(0, 12) == 4);  // the first 7, at (2, 2)
    CHECK(dx2.sum() == 10);
    const auto [y3, dx3] = routed(3, 2);   // the general loop: windows at rows and columns 0 and 2
    CHECK(std::isnan(y3(0, 0)));           // 4 at (0, 1), then the NaN at (2, 0) takes over
    CHECK(y3(0, 1) == 7);
    CHECK(std::isnan(y3(0, 2)));           // starts at the NaN, which stays
    CHECK(y3(0, 3) == 9);
    CHECK(dx3(0, 10) == 1 + 3);
    CHECK(dx3(0, 12) == 2);
    CHECK(dx3(0, 24) == 4);
}

TEST_CASE("max pooling 2x2 picks like the window order says in its vector lanes too, ties and NaN included",
          "[layers]") {
    // Rows of 18 windows (four groups of four in vector lanes, then the last four again,
    // overlapping), of 7 (the Fashion CNN's second pooling: one group and the last four)
    // and of 3 (one by one); the last input row and column unused; values from a small set
    // with 0 and -0, so that ties are everywhere, and some NaN.
    for (const int64_t W : {37, 15, 7}) {
        CAPTURE(W);
        const int64_t H = 7, OH = 3, OW = W / 2;
        const bp::Shape input{3, H, W};
        const float values[] = {0.0f, -0.0f, 1.0f, 2.0f, std::numeric_limits<float>::quiet_NaN()};
        bp::Matrix x(2, input.size());
        for (int64_t i = 0; i < x.size(); ++i) x.data()[i] = values[bp::Random(11).below(uint64_t(i), 5)];
        auto pool = test::make_layer("max_pool2d");
        const bp::Shape out = pool->build(input, bp::Random(1));
        REQUIRE(out == bp::Shape{3, OH, OW});
        auto ws = pool->make_workspace(2);
        bp::Matrix y(2, out.size()), dx(2, input.size()), dy(2, out.size());
        pool->forward(x, y, ws.get(), bp::StepContext{});
        for (int64_t i = 0; i < dy.size(); ++i) dy.data()[i] = float(i + 1);
        pool->backward(x, y, dy, dx, {}, ws.get(), bp::StepContext{});
        for (int64_t r = 0; r < 2; ++r)
            for (int64_t o = 0; o < out.size(); ++o) {
                const int64_t c = o / (OH * OW), oh = o % (OH * OW) / OW, ow = o % OW;
                int64_t pick = -1;   // window order (0,0) (0,1) (1,0) (1,1); a later one takes over if larger or NaN
                for (const int64_t k : {0, 1, 2, 3}) {
                    const int64_t i = (c * H + 2 * oh + k / 2) * W + 2 * ow + k % 2;
                    if (pick < 0 || (!std::isnan(x(r, pick)) && !(x(r, i) <= x(r, pick)))) pick = i;
                }
                CAPTURE(r, o);
                CHECK(std::memcmp(&y(r, o), &x(r, pick), sizeof(float)) == 0);   // the same bits: -0 is not 0
                CHECK(dx(r, pick) == dy(r, o));   // windows do not overlap: the gradient lands alone
            }
        CHECK(dx.sum() == dy.sum());
    }
}

TEST_CASE("the norms' lane sums agree with a plain double loop at every length, tails included", "[layers]") {
    std::vector<float> a(1000), b(1000);
    for (std::size_t i = 0; i < a.size(); ++i) {
        a[i] = float(std::sin(0.37 * double(i)) * 3.0 + 0.5);
        b[i] = float(std::cos(0.11 * double(i)) - 0.25);
    }
    for (const int64_t n : {0, 1, 7, 15, 16, 17, 31, 100, 784, 1000}) {
        double sum = 0, squares = 0, dot = 0, scale = 0;
        const double mean = 0.4;
        for (int64_t i = 0; i < n; ++i) {
            sum += double(a[i]);
            squares += (double(a[i]) - mean) * (double(a[i]) - mean);
            dot += double(a[i]) * double(b[i]);
            scale += std::abs(double(a[i])) * 4.0;   // bounds every term's size
        }
        // Two double sums of the same terms in different orders: apart by rounding alone.
        const double tolerance = 1e-14 * (scale + 1.0);
        INFO("n = " << n);
        CHECK(std::abs(bp::lanes::sum(a.data(), n) - sum) <= tolerance);
        CHECK(std::abs(bp::lanes::squared_deviations(a.data(), n, mean) - squares) <= tolerance * 4);
        const double lanes_dot = bp::lanes::sum_terms(n, [&](int64_t i) { return double(a[i]) * double(b[i]); });
        CHECK(std::abs(lanes_dot - dot) <= tolerance);
    }
}

TEST_CASE("batch norm normalises with shard statistics in training, running ones in evaluation", "[layers]") {
    auto bn = test::make_layer("batch_norm", {{"momentum", 0.5}});
    bn->build(bp::Shape{2, 1, 3}, bp::Random(1));   // 2 channels of 3 values
    auto ws_a = bn->make_workspace(4), ws_b = bn->make_workspace(4);
    const bp::Matrix a = ramp(4, 6), b = ramp(2, 6) * 3.0f + bp::Matrix::Constant(2, 6, 1.0f);
    bp::Matrix ya(4, 6), yb(2, 6);
    bn->forward(a, ya, ws_a.get(), bp::StepContext{true, bp::Random(1), 0});
    bn->forward(b, yb, ws_b.get(), bp::StepContext{true, bp::Random(1), 4});
    for (int c = 0; c < 2; ++c) {
        Eigen::ArrayXd v(12);
        for (int r = 0; r < 4; ++r)
            for (int k = 0; k < 3; ++k) v(r * 3 + k) = ya(r, c * 3 + k);
        CHECK(v.mean() == Approx(0).margin(1e-6));
        CHECK(v.square().mean() == Approx(1).epsilon(1e-4));   // var / (var + eps)
    }

    // end_step folds both shards: the running statistics follow the whole batch's.
    std::vector<bp::Workspace*> shards = {ws_a.get(), ws_b.get()};
    bn->end_step(shards);
    for (int c = 0; c < 2; ++c) {
        Eigen::ArrayXd v(18);
        for (int r = 0; r < 6; ++r)
            for (int k = 0; k < 3; ++k) v(r * 3 + k) = r < 4 ? a(r, c * 3 + k) : b(r - 4, c * 3 + k);
        const double mean = v.mean(), unbiased = (v - mean).square().sum() / 17.0;
        CHECK(bn->buffers()[0].value(0, c) == Approx(0.5 * mean).epsilon(1e-6));
        CHECK(bn->buffers()[1].value(0, c) == Approx(0.5 + 0.5 * unbiased).epsilon(1e-6));
    }

    bp::Matrix y(4, 6);
    bn->forward(a, y, ws_a.get(), bp::StepContext{false, bp::Random(1), 0});
    for (int c = 0; c < 2; ++c) {
        const float rm = bn->buffers()[0].value(0, c), rv = bn->buffers()[1].value(0, c);
        for (int k = 0; k < 3; ++k) CHECK(y(1, c * 3 + k) == Approx((a(1, c * 3 + k) - rm) / std::sqrt(rv + 1e-5f)));
    }
}

namespace {

// The weights fingerprint of the experiment in `text` trained at 1, 2 and 8 threads;
// each multi-thread run must have had more than one thread do work, or the
// comparison would prove nothing.
std::vector<std::string> fingerprints_at_1_2_8_threads(const std::string& text, const std::string& name) {
    auto& registry = test::builtin_registry();
    std::vector<std::string> prints;
    for (int threads : {1, 2, 8}) {
        const auto e = bp::parse_experiment(text, test::temp_dir(name) / (name + ".yaml"),
                                            {"train.threads=" + std::to_string(threads)}, registry);
        const auto r = test::run_quietly(e, test::temp_dir(name + "-run-" + std::to_string(threads)));
        INFO(threads << " threads");
        CHECK((threads == 1 ? r.threads_used == 1 : r.threads_used > 1));
        prints.push_back(r.fingerprint);
    }
    return prints;
}

}  // namespace

TEST_CASE("a CNN with Winograd and direct convolutions is bitwise identical at 1, 2 and 8 threads",
          "[layers][determinism]") {
    // The second convolution's shard of 16 images is 784 tiles, more than one block; each
    // epoch ends with a partial shard (100 = 2 x 48 + 4). The direct ones: two vectors a
    // row, then stride 2, then one vector a row.
    const std::string text = R"(name: winograd
seed: 5
data: { source: gaussian, shape: 3x28x28, samples: 100, classes: 3 }
model:
  - conv2d: { filters: 8, kernel: 3, padding: 1, activation: relu, algorithm: winograd }
  - conv2d: { filters: 40, kernel: 5, padding: 2, algorithm: winograd }
  - conv2d: { filters: 9, kernel: 3, padding: 1, algorithm: direct }
  - max_pool2d: { kernel: 2 }
  - conv2d: { filters: 6, kernel: 3, stride: 2, padding: 1, algorithm: direct }
  - conv2d: { filters: 3, kernel: 5, padding: 2, algorithm: direct }
  - global_avg_pool
  - dense: { units: 3 }
loss: softmax_cross_entropy
optimizer: { name: adam, lr: 0.01 }
train: { epochs: 2, batch_size: 48, shard_size: 16 }
)";
    const auto prints = fingerprints_at_1_2_8_threads(text, "winograd");
    CHECK(prints[1] == prints[0]);
    CHECK(prints[2] == prints[0]);
}

TEST_CASE("a model with dropout and batch norm is bitwise identical at 1, 2 and 8 threads", "[layers][determinism]") {
    const std::string text = R"(name: bn
seed: 5
data: { source: two_spirals, samples: 4000 }
model:
  - dense: { units: 256 }
  - batch_norm
  - relu
  - dropout: { rate: 0.2 }
  - dense: { units: 2 }
loss: softmax_cross_entropy
optimizer: { name: sgd, lr: 0.1, momentum: 0.9 }
train: { epochs: 3, batch_size: 50, shard_size: 16 }
)";
    const auto prints = fingerprints_at_1_2_8_threads(text, "bn");
    CHECK(prints[1] == prints[0]);
    CHECK(prints[2] == prints[0]);
}

namespace {

// conv2d on seeded data: its weights and output gradient, and what it computed.
struct ConvRun {
    bp::Matrix w, dy, y, dx, dw, db;
};

ConvRun run_conv(const std::string& algorithm, const bp::Shape& input, int64_t kernel, int64_t padding,
                 int64_t filters, const bp::Matrix& x, int64_t stride = 1) {
    auto conv = test::make_layer("conv2d", {{"algorithm", algorithm}, {"kernel", kernel}, {"padding", padding},
                                            {"filters", filters}, {"stride", stride}});
    const bp::Shape out = conv->build(input, bp::Random(5));
    auto params = conv->parameters();
    for (int64_t i = 0; i < params[1].value.size(); ++i) params[1].value.data()[i] = 0.1f * float(i) - 0.2f;
    auto ws = conv->make_workspace(x.rows() + 3);   // as for a shard of more rows
    ConvRun r{params[0].value, bp::Matrix(x.rows(), out.size()), bp::Matrix(x.rows(), out.size()),
              bp::Matrix(x.rows(), input.size()), {}, {}};
    conv->forward(x, r.y, ws.get(), bp::StepContext{});
    for (int64_t i = 0; i < r.dy.size(); ++i) r.dy.data()[i] = float(bp::Random(9).normal(uint64_t(i)));
    std::vector<bp::Matrix> grads{bp::Matrix(params[0].value.rows(), params[0].value.cols()),
                                  bp::Matrix(params[1].value.rows(), params[1].value.cols())};
    conv->backward(x, r.y, r.dy, r.dx, grads, ws.get(), bp::StepContext{});
    r.dw = grads[0];
    r.db = grads[1];
    // Backward leaves forward's state as it found it: a second call gives the same.
    bp::Matrix dx_again(r.dx.rows(), r.dx.cols());
    conv->backward(x, r.y, r.dy, dx_again, grads, ws.get(), bp::StepContext{});
    CHECK(dx_again == r.dx);
    CHECK(grads[0] == r.dw);
    // No rows: no gradient, whatever the workspace held.
    const bp::Matrix none(0, x.cols()), none_out(0, r.y.cols());
    bp::Matrix none_dx(0, x.cols());
    conv->backward(none, none_out, none_out, none_dx, grads, ws.get(), bp::StepContext{});
    CHECK(grads[0].isZero(0));
    CHECK(grads[1].isZero(0));
    return r;
}

// The convolution's y (without bias), dx and dw by the definition, in double.
struct Reference {
    Eigen::MatrixXd y, dx, dw;
};

Reference reference_conv(const bp::Shape& input, int64_t k, int64_t p, const bp::Matrix& x, const bp::Matrix& w,
                         const bp::Matrix& dy, int64_t stride = 1) {
    const int64_t C = input.dims[0], H = input.dims[1], W = input.dims[2], OH = (H + 2 * p - k) / stride + 1,
                  OW = (W + 2 * p - k) / stride + 1, F = w.rows();
    Reference r{Eigen::MatrixXd::Zero(x.rows(), F * OH * OW), Eigen::MatrixXd::Zero(x.rows(), x.cols()),
                Eigen::MatrixXd::Zero(w.rows(), w.cols())};
    for (int64_t s = 0; s < x.rows(); ++s)
        for (int64_t f = 0; f < F; ++f)
            for (int64_t oh = 0; oh < OH; ++oh)
                for (int64_t ow = 0; ow < OW; ++ow)
                    for (int64_t c = 0; c < C; ++c)
                        for (int64_t i = 0; i < k; ++i)
                            for (int64_t j = 0; j < k; ++j) {
                                const int64_t h = oh * stride - p + i, v = ow * stride - p + j;
                                if (h < 0 || h >= H || v < 0 || v >= W) continue;
                                const int64_t o = (f * OH + oh) * OW + ow, in = (c * H + h) * W + v,
                                              t = (c * k + i) * k + j;
                                r.y(s, o) += double(w(f, t)) * double(x(s, in));
                                r.dx(s, in) += double(w(f, t)) * double(dy(s, o));
                                r.dw(f, t) += double(dy(s, o)) * double(x(s, in));
                            }
    return r;
}

// The largest difference relative to the largest magnitude.
double relative_difference(const Eigen::MatrixXd& a, const Eigen::MatrixXd& exact) {
    return (a - exact).cwiseAbs().maxCoeff() / exact.cwiseAbs().maxCoeff();
}

}  // namespace

TEST_CASE("conv2d's Winograd path, direct path and im2col compute the convolution, forward and backward",
          "[layers]") {
    struct Case {
        bp::Shape input;
        int64_t kernel, padding, filters;
    };
    // Whole and cut-off tiles, padding and none, one channel and several; for the direct
    // path rows of one to four vectors, output rows in whole blocks and not, filters in
    // whole blocks and not, one and two vectors of them (41: 5 blocks of 8 and one; 48 lanes).
    for (const auto& c : {Case{{3, 12, 12}, 5, 0, 4}, Case{{2, 7, 6}, 5, 2, 3}, Case{{4, 9, 11}, 3, 1, 5},
                          Case{{1, 5, 5}, 3, 0, 2}, Case{{8, 28, 28}, 3, 1, 6}, Case{{3, 20, 40}, 3, 1, 9},
                          Case{{2, 6, 64}, 5, 2, 17}, Case{{3, 13, 14}, 3, 1, 41},
                          // 245 tiles in blocks of 227: the backward pass transforms the inputs again.
                          Case{{32, 28, 28}, 5, 2, 40}}) {
        CAPTURE(c.input.str(), c.kernel, c.padding);
        bp::Matrix x(5, c.input.size());
        for (int64_t i = 0; i < x.size(); ++i) x.data()[i] = float(bp::Random(3).normal(uint64_t(i)));
        const ConvRun im2col = run_conv("im2col", c.input, c.kernel, c.padding, c.filters, x);
        const ConvRun winograd = run_conv("winograd", c.input, c.kernel, c.padding, c.filters, x);
        const ConvRun direct = run_conv("direct", c.input, c.kernel, c.padding, c.filters, x);
        REQUIRE(winograd.w == im2col.w);
        REQUIRE(direct.w == im2col.w);
        const Reference exact = reference_conv(c.input, c.kernel, c.padding, x, im2col.w, im2col.dy);
        // Measured against this reference: im2col within 4.4e-7 of each quantity's
        // scale, Winograd within 1.2e-5 (dW of the 32-channel 5x5 case; 5e-6 otherwise),
        // direct within 1.5e-6 (dx of that case: each lane adds its F*k*k = 1,000 terms one
        // after another, where the products' kernels keep several partial sums; 4.1e-7
        // otherwise).
        for (const ConvRun* run : {&im2col, &winograd, &direct}) {
            const double tolerance = run == &winograd ? 3e-5 : run == &direct ? 3e-6 : 1e-6;
            CAPTURE(run == &winograd, run == &direct);
            bp::Matrix y = run->y;   // less the bias run_conv set
            const int64_t area = y.cols() / c.filters;
            for (int64_t f = 0; f < c.filters; ++f) y.middleCols(f * area, area).array() -= 0.1f * float(f) - 0.2f;
            CHECK(relative_difference(y.cast<double>(), exact.y) < tolerance);
            CHECK(relative_difference(run->dx.cast<double>(), exact.dx) < tolerance);
            CHECK(relative_difference(run->dw.cast<double>(), exact.dw) < tolerance);
        }
        CHECK(winograd.db == im2col.db);   // all sum dy the same way
        CHECK(direct.db == im2col.db);
        // Each did compute it (conv2d falls back to im2col where one cannot): their sums run
        // in other orders, which shows in some of the bits.
        for (const ConvRun* run : {&winograd, &direct})
            CHECK((run->y != im2col.y || run->dx != im2col.dx || run->dw != im2col.dw));
    }
}

TEST_CASE("conv2d's direct path at stride 2 computes the convolution, forward and backward", "[layers]") {
    struct Case {
        bp::Shape input;
        int64_t filters;
    };
    // The ResNet's downsampling (28x28 to 14x14), odd heights and widths (phases of
    // unequal size), one row and one column (no odd phase), rows of 1 to 4 vectors, filters
    // in two vectors and one (40).
    for (const auto& c : {Case{{16, 28, 28}, 32}, Case{{3, 7, 9}, 5}, Case{{3, 9, 14}, 40}, Case{{2, 1, 5}, 17},
                          Case{{2, 6, 1}, 3}, Case{{2, 9, 40}, 17}, Case{{2, 3, 80}, 9}, Case{{4, 5, 128}, 3}}) {
        CAPTURE(c.input.str(), c.filters);
        bp::Matrix x(5, c.input.size());
        for (int64_t i = 0; i < x.size(); ++i) x.data()[i] = float(bp::Random(3).normal(uint64_t(i)));
        const ConvRun im2col = run_conv("im2col", c.input, 3, 1, c.filters, x, 2);
        const ConvRun direct = run_conv("direct", c.input, 3, 1, c.filters, x, 2);
        REQUIRE(direct.w == im2col.w);
        const Reference exact = reference_conv(c.input, 3, 1, x, im2col.w, im2col.dy, 2);
        // Measured against this reference: both within 4e-7.
        for (const ConvRun* run : {&im2col, &direct}) {
            CAPTURE(run == &direct);
            bp::Matrix y = run->y;   // less the bias run_conv set
            const int64_t area = y.cols() / c.filters;
            for (int64_t f = 0; f < c.filters; ++f) y.middleCols(f * area, area).array() -= 0.1f * float(f) - 0.2f;
            CHECK(relative_difference(y.cast<double>(), exact.y) < 1e-6);
            CHECK(relative_difference(run->dx.cast<double>(), exact.dx) < 1e-6);
            CHECK(relative_difference(run->dw.cast<double>(), exact.dw) < 1e-6);
        }
        CHECK(direct.db == im2col.db);
        // Direct did compute it (conv2d falls back to im2col where it cannot): its sums run
        // in another order, which shows in some of the bits.
        CHECK((direct.y != im2col.y || direct.dx != im2col.dx || direct.dw != im2col.dw));
    }
}

TEST_CASE("gelu is x Phi(x), and its derivative Phi(x) + x phi(x), to float precision", "[layers]") {
    const auto gelu = test::builtin_registry().create<bp::Activation>("gelu", {});
    bp::Matrix x(1, 801);
    for (Eigen::Index i = 0; i < x.cols(); ++i) x(0, i) = -8.0f + 0.02f * float(i);   // past erf's saturation
    bp::Matrix y(1, 801), dx(1, 801);
    const bp::Matrix dy = bp::Matrix::Ones(1, 801);
    gelu->forward(x, y);
    gelu->backward(x, y, dy, dx);
    for (Eigen::Index i = 0; i < x.cols(); ++i) {
        const double v = x(0, i), phi = 0.5 * (1.0 + std::erf(v / std::sqrt(2.0)));
        INFO("x = " << v);
        CHECK(y(0, i) == Approx(v * phi).margin(2e-6));
        CHECK(dx(0, i) == Approx(phi + v * std::exp(-0.5 * v * v) / std::sqrt(2 * M_PI)).margin(2e-6));
    }
}
