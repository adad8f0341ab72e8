// "Did you mean" for unknown names.
#pragma once

#include <string>
#include <vector>

namespace bp {

// The closest candidate by edit distance, or "" when none is close enough to help.
std::string closest(const std::string& word, const std::vector<std::string>& candidates);

// " (did you mean 'x'?)" or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

// "a, b, c"
std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");

}  // namespace bp
