// The FP32 multiply-add peak of this machine at 1 and 2 threads, in GFLOP/s: independent
// FMA chains in the widest vectors the compiler targets (-march=native). The benchmark
// divides by it so that "share of peak" is of the machine it runs on.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#ifdef __AVX512F__
using Vec = __m512;
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define SUM _mm512_reduce_add_ps
#else
using Vec = __m256;
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
static float SUM(__m256 v) {
    alignas(32) float f[8];
    _mm256_store_ps(f, v);
    float s = 0;
    for (float x : f) s += x;
    return s;
}
#endif

constexpr int chains = 12;                 // enough to cover the FMA latency on two ports
constexpr long iterations = 100'000'000;
constexpr double flops_per_thread = 2.0 * chains * (sizeof(Vec) / sizeof(float)) * iterations;

float run() {
    Vec acc[chains];
    for (int c = 0; c < chains; ++c) acc[c] = SET1(float(c) * 1e-3f);
    const Vec a = SET1(0.999999f), b = SET1(1e-7f);
    for (long i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
        for (int c = 0; c < chains; ++c) acc[c] = FMA(acc[c], a, b);
    }
    Vec total = acc[0];
    for (int c = 1; c < chains; ++c) total = ADD(total, acc[c]);
    return SUM(total);
}

int main() {
    for (int threads : {1, 2}) {
        double best = 0;
        for (int rep = 0; rep < 3; ++rep) {
            std::vector<float> sink(threads);
            const auto start = std::chrono::steady_clock::now();
            std::vector<std::thread> pool;
            for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { sink[t] = run(); });
            for (auto& t : pool) t.join();
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            best = std::max(best, threads * flops_per_thread / s / 1e9);
            if (sink[0] == 12345.f) std::puts("");   // keeps the chains alive
        }
        std::printf("peak_gflops_%dt %.1f\n", threads, best);
    }
}
