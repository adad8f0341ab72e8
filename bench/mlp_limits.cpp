// What bounds the benchmark MLP's 2-thread step on this machine (bench/mlp_limits.sh).
//
// 1. products: each thread runs the products of one 64-row shard of a batch-128 step of
//    784-256-128-10 (forward, the weights' and the inputs' gradients, the first layer's
//    input gradient left out as the trainer leaves it), through the layers' own gemm(),
//    in a loop with nothing else: how fast the step's products go by themselves, now.
// 2. update: an SGD-with-momentum update of the MLP's 235,146 parameters, each thread
//    its half, after a "forward" that reads the weights, spin barriers between. Timed
//    three ways: each thread reading all the weights before the update (as data-parallel
//    training does: both cores then hold every weight's cache line), each reading only its
//    own half, and thread 0 reading all while thread 1 reads none. The last separates the
//    two things the first adds: thread 1 writes lines that only the other core holds, and
//    thread 0 holds as much data as under the first, all of it its own.
#include "gemm.hpp"

#include <array>
#include <atomic>
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

// A barrier for a fixed pair of threads that spin (both always arrive: plain threads).
class SpinBarrier {
public:
    void arrive() {
        const int generation = generation_.load();
        if (arrived_.fetch_add(1) == 1) {
            arrived_ = 0;
            generation_.fetch_add(1);
        } else {
            while (generation_.load() == generation) {}
        }
    }

private:
    std::atomic<int> arrived_{0}, generation_{0};
};

// Which weights each of the 2 threads reads before the update: every one (both), its own
// half (own), or thread 0 every one and thread 1 none (one): there thread 1 writes lines
// only the other core holds, and thread 0 has as much data as under both, all its own.
enum class Reads { both, own, one };

// Microseconds each of the 2 threads' update loops takes (the barriers' waits left out),
// each updating its half of the weights.
std::array<double, 2> update(Reads reads, int steps) {
    constexpr int n = 235146;
    std::vector<float> w(n, 1e-3f), v(n, 0.0f), g(n, 1e-4f);
    SpinBarrier barrier;
    std::array<double, 2> total{0, 0};
    auto work = [&](int t) {
        const int half_first = t * (n / 2), half_last = t ? n : n / 2;
        int read_first = 0, read_last = n;
        if (reads == Reads::own) read_first = half_first, read_last = half_last;
        if (reads == Reads::one && t == 1) read_last = 0;
        float sink = 0;
        for (int s = 0; s < steps; ++s) {
            for (int i = read_first; i < read_last; ++i) sink += w[i];   // the forward's reads
            barrier.arrive();
            const auto start = Clock::now();
            for (int i = half_first; i < half_last; ++i) {
                v[i] = 0.9f * v[i] + g[i];
                w[i] -= 0.1f * v[i];
            }
            if (s >= steps / 10) total[t] += seconds_since(start);   // the first tenth warms up
            barrier.arrive();
        }
        if (sink == 1234.5f) std::puts("");
    };
    std::thread other(work, 1);
    work(0);
    other.join();
    for (double& t : total) t = t / (steps - steps / 10) * 1e6;
    return total;
}

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 3;
    for (int r = 0; r < rounds; ++r) {
        std::printf("products_gflops_1t %.1f\n", products(1, 2000));
        std::printf("products_gflops_2t %.1f\n", products(2, 2000));
        const auto both = update(Reads::both, 3000), own = update(Reads::own, 3000), one = update(Reads::one, 3000);
        std::printf("update_us_both_read_all %.1f %.1f\n", both[0], both[1]);
        std::printf("update_us_each_read_own %.1f %.1f\n", own[0], own[1]);
        std::printf("update_us_one_read_all %.1f %.1f\n", one[0], one[1]);
    }
}
