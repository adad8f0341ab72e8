// A tuning search: the space a comparison variant declares in place of values
// (`lr: { log_uniform: [1e-4, 1] }`), and the trials drawn from it. Pure functions of
// their inputs, so a search is the same every time it is read.
#pragma once

#include <backplane/random.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace bp {

struct SearchDimension {
    enum class Kind { uniform, log_uniform, choice };
    std::string key;                    // its dotted path in the variant, e.g. optimizer.lr
    Kind kind = Kind::uniform;
    double low = 0, high = 0;           // uniform and log_uniform: the closed range
    std::vector<std::string> choices;   // choice: each value's YAML text
};

enum class SearchMethod { quasi_random, random, grid };

// Each trial's value of every dimension, as YAML text; drawn numbers are rounded to
// four significant digits, so the value a table shows is the value that trained.
// random: independent uniform draws from `stream`. quasi_random: the Halton sequence
// (one prime base per dimension, from its second point), each dimension shifted by a
// uniform draw from `stream` modulo 1 (a Cranley-Patterson rotation), so the points
// cover the space evenly and still differ with the seed. Both map a uniform u to
// low + u (high - low), to exp of that in log space, or to choice floor(u k).
// grid: every choice times k evenly spaced points (log-spaced for log_uniform) per
// range, ends included, with the largest k >= 2 that keeps the grid within `trials`;
// throws bp::Error when even k = 2 does not fit.
std::vector<std::vector<std::string>> draw_trials(const std::vector<SearchDimension>& space, SearchMethod method,
                                                  int64_t trials, const Random& stream);

}  // namespace bp
