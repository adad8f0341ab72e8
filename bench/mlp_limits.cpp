// The benchmark MLP's products by themselves (bench/mlp_limits.sh): each thread runs the
// products of one 64-row shard of a batch-128 step of 784-256-128-10 (forward, the
// weights' and the inputs' gradients, the first layer's input gradient left out as the
// trainer leaves it), through the layers' own gemm(), in a loop with nothing else.
#include "gemm.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

using bp::Matrix;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// One thread's shard: the three layers' weights are shared, the rest is its own.
struct Shard {
    Matrix x{Matrix::Random(64, 784)}, h1{Matrix::Random(64, 256)}, h2{Matrix::Random(64, 128)},
        z3{64, 10}, d3{Matrix::Random(64, 10)}, d2{64, 128}, d1{64, 256}, g1{784, 256}, g2{256, 128}, g3{128, 10};
};

void shard_products(const Matrix& w1, const Matrix& w2, const Matrix& w3, Shard& s) {
    gemm(s.x, false, w1, false, s.h1);
    gemm(s.h1, false, w2, false, s.h2);
    gemm(s.h2, false, w3, false, s.z3);
    gemm(s.h2, true, s.d3, false, s.g3);
    gemm(s.d3, false, w3, true, s.d2);
    gemm(s.h1, true, s.d2, false, s.g2);
    gemm(s.d2, false, w2, true, s.d1);
    gemm(s.x, true, s.d1, false, s.g1);
}

// GFLOP/s of `threads` threads each running shard_products `iterations` times.
double products(int threads, int iterations) {
    const Matrix w1 = Matrix::Random(784, 256), w2 = Matrix::Random(256, 128), w3 = Matrix::Random(128, 10);
    std::vector<Shard> shards(threads);
    const auto start = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] { for (int i = 0; i < iterations; ++i) shard_products(w1, w2, w3, shards[t]); });
    for (auto& p : pool) p.join();
    const double macs = 64.0 * (2 * (784 * 256 + 256 * 128 + 128 * 10) + 256 * 128 + 128 * 10);
    return 2 * macs * threads * iterations / seconds_since(start) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 3;
    for (int r = 0; r < rounds; ++r) {
        std::printf("products_gflops_1t %.1f\n", products(1, 2000));
        std::printf("products_gflops_2t %.1f\n", products(2, 2000));
    }
}
