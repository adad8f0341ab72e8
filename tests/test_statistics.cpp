// A comparison's statistics against reference values: SciPy 1.10's
// scipy.stats.wilcoxon(d, mode="exact") (Debian's python3-scipy), the exact
// distribution enumerated by hand where SciPy gives up (ties), and Holm by hand.
#include "compare/statistics.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

TEST_CASE("Wilcoxon's signed-rank test gives SciPy's exact p-values", "[statistics]") {
    // wilcoxon([0.01, 0.02, 0.03, 0.04, 0.05], mode="exact").pvalue == 0.0625: all positive,
    // the smallest p five pairs can give (2 / 2^5).
    CHECK(bp::wilcoxon_signed_rank(std::vector{0.01, 0.02, 0.03, 0.04, 0.05}) == Approx(0.0625).epsilon(1e-12));
    CHECK(bp::wilcoxon_signed_rank(std::vector{-0.01, -0.02, -0.03, -0.04, -0.05}) == Approx(0.0625).epsilon(1e-12));
    // wilcoxon([0.012, -0.004, 0.021, 0.008, -0.015, 0.030, 0.018, 0.005], mode="exact") -> 0.109375
    CHECK(bp::wilcoxon_signed_rank(std::vector{0.012, -0.004, 0.021, 0.008, -0.015, 0.030, 0.018, 0.005}) ==
          Approx(0.109375).epsilon(1e-12));
    // 40 pairs, exact (SciPy: 0.8367550107286661)
    const std::vector<double> forty{2.1409,  -2.4557, 0.5181,  -0.4678, -0.3526, -0.1156, -1.92,   -0.1319,
                                    -0.7652, 3.423,   0.3258,  -0.2526, -0.1813, -0.568,  -0.9552, -0.2908,
                                    0.5819,  -0.1386, 1.0578,  -0.0998, 0.1243,  1.6458,  0.6451,  -0.4052,
                                    -0.0828, 0.6405,  2.0351,  -0.1696, -0.1436, 1.1023,  -0.7865, -0.1917,
                                    0.9825,  0.6804,  0.1915,  0.7701,  -2.7282, 1.1213,  -0.8596, -1.5686};
    CHECK(bp::wilcoxon_signed_rank(forty) == Approx(0.8367550107286661).epsilon(1e-9));
}

TEST_CASE("Wilcoxon's test drops zero differences and ranks ties by their average", "[statistics]") {
    // Zeros dropped: the test on the other five, wilcoxon([0.3, -0.1, 0.2, 0.4, 0.5], mode="exact") -> 0.125.
    CHECK(bp::wilcoxon_signed_rank(std::vector{0.0, 0.3, -0.1, 0.2, 0.4, 0.5}) == Approx(0.125).epsilon(1e-12));
    // Ties (SciPy switches to its normal approximation): |d| ranks 2.5 2.5 4 6 6 6 1, W+ = 23;
    // enumerating all 128 sign patterns gives P(W+ >= 23) = 9/128, so p = 18/128 = 0.140625.
    CHECK(bp::wilcoxon_signed_rank(std::vector{0.1, 0.1, -0.2, 0.3, 0.3, 0.3, -0.05}) == Approx(0.140625).epsilon(1e-12));
    // No difference at all: nothing to reject.
    CHECK(bp::wilcoxon_signed_rank(std::vector{0.0, 0.0, 0.0}) == 1.0);
    CHECK(bp::wilcoxon_signed_rank(std::vector<double>{}) == 1.0);
    // One pair: W+ is 1 of {0, 1}, p = 2 min(1/2, 1) = 1.
    CHECK(bp::wilcoxon_signed_rank(std::vector{0.2}) == 1.0);
}

TEST_CASE("Holm's adjustment steps down and never lets an adjusted p fall", "[statistics]") {
    // By hand: sorted 0.01 x4 = 0.04, 0.03 x3 = 0.09, 0.04 x2 = 0.08 -> 0.09 (monotone), 0.20 x1.
    const auto adjusted = bp::holm(std::vector{0.01, 0.04, 0.03, 0.20});
    REQUIRE(adjusted.size() == 4);
    CHECK(adjusted[0] == Approx(0.04));
    CHECK(adjusted[1] == Approx(0.09));
    CHECK(adjusted[2] == Approx(0.09));
    CHECK(adjusted[3] == Approx(0.20));
    CHECK(bp::holm(std::vector{0.5, 0.6}) == std::vector{1.0, 1.0});   // capped at 1
    CHECK(bp::holm(std::vector<double>{}).empty());
}

TEST_CASE("the bootstrap interval is seeded and lands on the exact percentiles", "[statistics]") {
    // Five 0s and five 1s: a resample's mean is Binomial(10, 1/2) / 10, whose 2.5% and 97.5%
    // quantiles are 0.2 and 0.8 (P(X <= 1) = 0.011, P(X <= 2) = 0.055); 10,000 resamples find them.
    const std::vector<double> coins{0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
    const bp::Interval i = bp::bootstrap_mean_interval(coins, 7);
    CHECK(i.low == Approx(0.2));
    CHECK(i.high == Approx(0.8));
    // The same seed gives the same bits; another seed another draw of the same interval's estimate.
    const std::vector<double> finals{0.8812, 0.8790, 0.8851, 0.8776, 0.8833};
    const bp::Interval a = bp::bootstrap_mean_interval(finals, 1), b = bp::bootstrap_mean_interval(finals, 1);
    CHECK(a.low == b.low);
    CHECK(a.high == b.high);
    CHECK(a.low < 0.88124);   // the mean lies inside, the bounds inside the values' range
    CHECK(a.high > 0.88124);
    CHECK(a.low >= 0.8776);
    CHECK(a.high <= 0.8851);
    CHECK(std::isnan(bp::bootstrap_mean_interval(std::vector{0.5}, 1).low));   // one value: no interval
}
