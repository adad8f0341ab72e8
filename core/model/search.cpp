#include "model/search.hpp"

#include "text/format.hpp"

#include <backplane/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace bp {

namespace {

// Four significant digits: what a reader copies from the table is exactly what trained.
std::string short_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return shortest_double(std::strtod(buf, nullptr));
}

// The value at u in [0, 1] of one dimension.
std::string value_at(const SearchDimension& d, double u) {
    switch (d.kind) {
        case SearchDimension::Kind::uniform: return short_number(d.low + u * (d.high - d.low));
        case SearchDimension::Kind::log_uniform:
            return short_number(std::exp(std::log(d.low) + u * (std::log(d.high) - std::log(d.low))));
        case SearchDimension::Kind::choice: {
            const auto k = std::min(d.choices.size() - 1, std::size_t(u * double(d.choices.size())));
            return d.choices[k];
        }
    }
    return {};
}

// The Halton sequence's `index`-th point in base `base`: index's digits mirrored
// behind the point.
double radical_inverse(uint64_t index, uint64_t base) {
    double result = 0, scale = 1.0 / double(base);
    for (; index > 0; index /= base, scale /= double(base)) result += double(index % base) * scale;
    return result;
}

double uniform53(const Random& r, uint64_t i) { return double(r.bits(i) >> 11) * 0x1.0p-53; }

constexpr uint64_t primes[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71};

std::vector<std::vector<std::string>> grid(const std::vector<SearchDimension>& space, int64_t trials) {
    std::size_t choices = 1, ranges = 0;
    for (const auto& d : space) {
        if (d.kind == SearchDimension::Kind::choice) choices = std::min(choices * d.choices.size(), std::size_t(1) << 20);
        else ++ranges;
    }
    // Choices x k^ranges; no more than `trials` (at most 1000) is ever formed.
    auto size = [&](std::size_t k) {
        std::size_t n = choices;
        for (std::size_t i = 0; i < ranges && n <= std::size_t(trials); ++i) n *= k;
        return n;
    };
    std::size_t k = 2;
    while (ranges > 0 && size(k + 1) <= std::size_t(trials)) ++k;
    if (size(k) > std::size_t(trials))
        throw Error("a grid over this space has at least " + std::to_string(size(2)) +
                    " points (every choice, 2 points per range), more than trials: " + std::to_string(trials) +
                    "; raise trials, or use method: quasi_random");
    // Every combination, the first dimension slowest.
    std::vector<std::vector<std::string>> out(1);
    for (const auto& d : space) {
        std::vector<std::string> values = d.choices;
        if (d.kind != SearchDimension::Kind::choice)
            for (std::size_t i = 0; i < k; ++i) values.push_back(value_at(d, double(i) / double(k - 1)));
        std::vector<std::vector<std::string>> next;
        for (const auto& partial : out)
            for (const auto& v : values) {
                next.push_back(partial);
                next.back().push_back(v);
            }
        out = std::move(next);
    }
    return out;
}

}  // namespace

std::vector<std::vector<std::string>> draw_trials(const std::vector<SearchDimension>& space, SearchMethod method,
                                                  int64_t trials, const Random& stream) {
    if (method == SearchMethod::grid) return grid(space, trials);
    if (method == SearchMethod::quasi_random && space.size() > std::size(primes))
        throw Error("quasi_random searches at most " + std::to_string(std::size(primes)) + " keys at once, not " +
                    std::to_string(space.size()) + "; use method: random");
    std::vector<std::vector<std::string>> out;
    for (int64_t t = 0; t < trials; ++t) {
        std::vector<std::string> values;
        for (std::size_t d = 0; d < space.size(); ++d) {
            double u;
            if (method == SearchMethod::random) {
                u = uniform53(stream.derive("random"), uint64_t(t) * space.size() + d);
            } else {
                u = radical_inverse(uint64_t(t) + 1, primes[d]) + uniform53(stream.derive("shift"), d);
                u -= std::floor(u);
            }
            values.push_back(value_at(space[d], u));
        }
        out.push_back(std::move(values));
    }
    return out;
}

}  // namespace bp
