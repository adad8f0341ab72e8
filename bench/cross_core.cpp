// What writing a cache line the other core has read costs here: an SGD-with-momentum update
// of the benchmark MLP's 235,146 parameters by 2 threads, each its half, timed per thread
// after a pass that reads the weights three ways: each thread every weight (as
// data-parallel training's forward does: both cores then hold every weight's line), each
// only its own half, and thread 0 every weight while thread 1 reads none. The last
// separates the two things the first adds: thread 1 writes lines only the other core holds,
// and thread 0 holds as much data as under the first, all of it its own.
// Prints, for each way, a line "cross_core_us_<way> <thread 0> <thread 1>" (microseconds,
// the mean over the steps), ROUNDS times (bench/measure.sh reads them).
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

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
        const auto own = update(Reads::own, 3000), both = update(Reads::both, 3000), one = update(Reads::one, 3000);
        std::printf("cross_core_us_own %.1f %.1f\n", own[0], own[1]);
        std::printf("cross_core_us_both %.1f %.1f\n", both[0], both[1]);
        std::printf("cross_core_us_one %.1f %.1f\n", one[0], one[1]);
    }
}
