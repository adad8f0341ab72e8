// A suite: workloads (experiment files, each with a target and a budget) and the
// variants to compare on every one of them, read as one comparison per workload.
// A file is a suite when it has `workloads:`.
#pragma once

#include "model/comparison.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace bp {

struct Workload {
    std::string name;
    std::filesystem::path file;   // its experiment, absolute
    Comparison comparison;        // the experiment with the suite's seeds, tuning, variants and this target
};

// What the performance profile measures time to target in: epochs (the default) are
// the same on every machine and across a resume; seconds are the machine's.
enum class ProfileMeasure { epochs, seconds };

struct Suite {
    std::string name;
    ProfileMeasure measure = ProfileMeasure::epochs;
    std::vector<Workload> workloads;
};

// Reads `file`, applies `--set` overrides to it, and with `quick` merges its `quick:`
// keys over the suite's (and each workload's `quick:` over the workload's); nullopt
// when the file has no `workloads:` (an experiment or comparison). Every error names
// its place in the suite or the workload's experiment file. The full mode reads the
// quick mode too, only to check it, when the file has a `quick:` block.
std::optional<Suite> load_suite(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                                bool quick, Registry& registry);
std::optional<Suite> parse_suite(const std::string& text, const std::filesystem::path& file,
                                 const std::vector<std::string>& overrides, bool quick, Registry& registry);

}  // namespace bp
