#include "compare/statistics.hpp"

#include <backplane/random.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace bp {

namespace {

// numpy's default (linear) quantile of sorted values.
double quantile(const std::vector<double>& sorted, double q) {
    const double at = q * double(sorted.size() - 1);
    const std::size_t below = std::size_t(std::floor(at));
    const std::size_t above = std::min(below + 1, sorted.size() - 1);
    return sorted[below] + (at - double(below)) * (sorted[above] - sorted[below]);
}

}  // namespace

Interval bootstrap_mean_interval(std::span<const double> values, uint64_t seed, int resamples, double level) {
    const std::size_t n = values.size();
    if (n < 2) return {std::nan(""), std::nan("")};
    const Random draws = Random(seed).derive("bootstrap");
    std::vector<double> means(static_cast<std::size_t>(resamples));
    for (int b = 0; b < resamples; ++b) {
        const Random r = draws.derive(uint64_t(b));
        double sum = 0;
        for (std::size_t k = 0; k < n; ++k) sum += values[r.below(k, n)];
        means[std::size_t(b)] = sum / double(n);
    }
    std::sort(means.begin(), means.end());
    const double tail = (1 - level) / 2;
    return {quantile(means, tail), quantile(means, 1 - tail)};
}

double wilcoxon_signed_rank(std::span<const double> differences) {
    std::vector<double> d;
    for (double x : differences)
        if (x != 0) d.push_back(x);
    const std::size_t n = d.size();
    if (n == 0) return 1;
    // Ranks of |d|, ties averaged; doubled, so that they are integers.
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return std::abs(d[a]) < std::abs(d[b]); });
    std::vector<int64_t> rank2(n);
    for (std::size_t i = 0; i < n;) {
        std::size_t j = i;
        while (j + 1 < n && std::abs(d[order[j + 1]]) == std::abs(d[order[i]])) ++j;
        for (std::size_t k = i; k <= j; ++k) rank2[order[k]] = int64_t(i + j + 2);   // 2 x the average of i+1..j+1
        i = j + 1;
    }
    int64_t total = 0, positive = 0;
    for (std::size_t i = 0; i < n; ++i) {
        total += rank2[i];
        if (d[i] > 0) positive += rank2[i];
    }
    // P(W+ = s) over the 2^n equally likely sign patterns, built one rank at a time.
    std::vector<double> p(std::size_t(total) + 1, 0.0);
    p[0] = 1;
    int64_t reach = 0;
    for (const int64_t r : rank2) {
        reach += r;
        for (int64_t s = reach; s >= 0; --s) p[std::size_t(s)] = 0.5 * (p[std::size_t(s)] + (s >= r ? p[std::size_t(s - r)] : 0.0));
    }
    double less = 0, greater = 0;
    for (int64_t s = 0; s <= total; ++s) {
        if (s <= positive) less += p[std::size_t(s)];
        if (s >= positive) greater += p[std::size_t(s)];
    }
    return std::min(1.0, 2 * std::min(less, greater));
}

std::vector<double> holm(std::span<const double> p) {
    const std::size_t m = p.size();
    std::vector<std::size_t> order(m);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
    std::vector<double> adjusted(m);
    double running = 0;   // adjusted p-values never fall along the order
    for (std::size_t k = 0; k < m; ++k) {
        running = std::max(running, std::min(1.0, double(m - k) * p[order[k]]));
        adjusted[order[k]] = running;
    }
    return adjusted;
}

}  // namespace bp
