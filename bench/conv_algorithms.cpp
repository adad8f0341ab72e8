// conv2d's direct convolution against its Winograd path on one shard (32 images) of each
// 3x3 geometry in the shipped Fashion CNN and ResNet, one thread: the time of forward
// and of backward (dx and dW), the ratio, each one's GFLOP/s counted as the direct
// computation's multiply-adds, and how far the two results are apart. The two run
// alternately in one process, so the ratio holds on a machine whose speed drifts.
// Built and run by bench/conv_algorithms.sh.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "direct_conv.hpp"
#include "winograd.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double micros(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::micro>(b - a).count();
}

double relative_difference(const bp::Matrix& a, const bp::Matrix& b) {
    return double((a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff());
}

struct Case {
    const char* layer;
    int64_t channels, size, filters;
};

void run(const Case& c, int reps) {
    const int64_t n = 32, area = c.size * c.size;
    const ImageGeometry g{c.channels, c.size, c.size, 3, 1, 1, c.size, c.size};
    const Winograd winograd(g, c.filters);
    const DirectConv direct(g, c.filters);
    Winograd::Buffers wb = winograd.buffers(n);
    DirectConv::Buffers db = direct.buffers();
    const bp::Matrix x = bp::Matrix::Random(n, c.channels * area), dz = bp::Matrix::Random(n, c.filters * area);
    const bp::Matrix w = bp::Matrix::Random(c.filters, c.channels * 9), bias = bp::Matrix::Random(1, c.filters);
    bp::Matrix z1(n, c.filters * area), z2 = z1, dx1(n, c.channels * area), dx2 = dx1;
    bp::Matrix dw1(c.filters, c.channels * 9), dw2 = dw1;
    double t[4] = {};
    for (int r = -2; r < reps; ++r) {   // two untimed rounds first
        const auto t0 = Clock::now();
        winograd.forward(w, bias, x, z1, wb);
        const auto t1 = Clock::now();
        winograd.backward(x, dz, dx1, dw1, wb);
        const auto t2 = Clock::now();
        direct.forward(w, bias, x, z2, db);
        const auto t3 = Clock::now();
        direct.backward(x, dz, dx2, dw2, db);
        const auto t4 = Clock::now();
        if (r < 0) continue;
        t[0] += micros(t0, t1), t[1] += micros(t1, t2), t[2] += micros(t2, t3), t[3] += micros(t3, t4);
    }
    for (double& v : t) v /= reps;
    const double flops = 2.0 * double(n * c.filters * c.channels * 9 * area);   // forward; backward twice it
    std::printf("%-22s %3lld -> %3lld %2lldx%-2lld %8.0f %8.0f %8.0f %8.0f  %5.2fx  %5.0f %5.0f  %.1e\n", c.layer,
                (long long)c.channels, (long long)c.filters, (long long)c.size, (long long)c.size, t[0], t[1], t[2],
                t[3], (t[0] + t[1]) / (t[2] + t[3]), flops / t[2] / 1e3, 2 * flops / t[3] / 1e3,
                std::max({relative_difference(z2, z1), relative_difference(dx2, dx1), relative_difference(dw2, dw1)}));
}

}  // namespace

int main(int argc, char** argv) {
    const int reps = argc > 1 ? std::atoi(argv[1]) : 50;
    if (reps < 1) {
        std::fprintf(stderr, "usage: conv_algorithms [REPS >= 1]\n");
        return 2;
    }
    std::printf("one shard of 32 images, 1 thread, mean of %d rounds, us (GFLOP/s as direct multiply-adds)\n", reps);
    std::printf("%-22s %-14s %8s %8s %8s %8s  %6s  %5s %5s  %s\n", "layer", "geometry", "wg fwd", "wg bwd", "dir fwd",
                "dir bwd", "ratio", "GF/s", "bwd", "apart");
    for (const Case& c : {Case{"resnet stage 1", 16, 28, 16}, Case{"resnet stage 2", 32, 14, 32},
                          Case{"resnet stage 3", 64, 7, 64}, Case{"fashion cnn conv 2", 32, 28, 32},
                          Case{"fashion cnn conv 4", 64, 14, 64}, Case{"fashion cnn conv 1", 1, 28, 32}})
        run(c, reps);
    std::printf("ratio: Winograd's forward and backward time over the direct one's; apart: the largest\n"
                "difference of output, dx or dW relative to the largest Winograd value\n");
}
