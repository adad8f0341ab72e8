#include "text/suggest.hpp"

#include <algorithm>
#include <numeric>

namespace bp {

namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    std::iota(row.begin(), row.end(), 0);
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
            diag = up;
        }
    }
    return row[b.size()];
}

std::vector<std::string> parts(const std::string& name) {
    std::vector<std::string> out(1);
    for (char c : name) {
        if (c == '_') out.emplace_back();
        else out.back() += c;
    }
    return out;
}

// "validation_loss" and "val_loss", "test_acc" and "test_accuracy": the same words,
// one of each pair a prefix of the other.
bool abbreviates(const std::string& a, const std::string& b) {
    const auto pa = parts(a), pb = parts(b);
    if (pa.size() != pb.size() || pa.size() < 2) return false;
    for (std::size_t i = 0; i < pa.size(); ++i) {
        const auto& shorter = pa[i].size() < pb[i].size() ? pa[i] : pb[i];
        const auto& longer = pa[i].size() < pb[i].size() ? pb[i] : pa[i];
        if (shorter.empty() || longer.compare(0, shorter.size(), shorter) != 0) return false;
    }
    return true;
}

}  // namespace

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
    // A name inside another ("spirals" in "two_spirals") is the likeliest intent.
    if (word.size() >= 3)
        for (const auto& c : candidates)
            if (c.find(word) != std::string::npos || word.find(c) != std::string::npos) return c;
    for (const auto& c : candidates)
        if (abbreviates(word, c)) return c;
    std::string best;
    std::size_t best_d = std::max<std::size_t>(2, word.size() / 3) + 1;  // at most a third changed
    for (const auto& c : candidates) {
        const std::size_t d = edit_distance(word, c);
        if (d < best_d) best_d = d, best = c;
    }
    return best;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
    const std::string c = closest(word, candidates);
    return c.empty() ? "" : " (did you mean '" + c + "'?)";
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
    std::string out;
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
    return out;
}

}  // namespace bp
