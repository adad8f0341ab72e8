// The statistics a comparison reports over its seeds: a confidence interval for a
// variant's mean, and paired tests between variants trained with the same seeds.
// Pure functions of their inputs (the bootstrap draws from a seeded counter-based
// stream), so a report is the same every time it is made.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace bp {

struct Interval {
    double low, high;
};

// The percentile bootstrap interval at `level` of the mean of `values`: `resamples`
// resamples with replacement, drawn from Random(seed). NaN bounds below two values.
Interval bootstrap_mean_interval(std::span<const double> values, uint64_t seed, int resamples = 10000,
                                 double level = 0.95);

// The two-sided p-value of the Wilcoxon signed-rank test that paired differences are
// centred on 0. Zero differences are dropped (Wilcoxon's rule) and tied magnitudes
// share their average rank. Exact at every size: the distribution of the positive
// rank sum over all 2^n sign patterns of the ranks at hand (ties included), p = 2 min(P(W+ <=
// w), P(W+ >= w)), at most 1; SciPy's `wilcoxon(d, mode="exact")` where it has no ties.
// 1 when no difference is non-zero.
double wilcoxon_signed_rank(std::span<const double> differences);

// Holm's step-down adjustment of p-values for testing them together, in input order.
std::vector<double> holm(std::span<const double> p);

}  // namespace bp
