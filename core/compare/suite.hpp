// A suite run: one comparison per workload, each in its own folder, then across
// workloads the performance profile (profile.hpp) and a ranking by its area.
#pragma once

#include "compare/compare.hpp"
#include "compare/profile.hpp"
#include "model/suite.hpp"

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

namespace bp {

struct SuiteResult {
    std::filesystem::path dir;
    std::vector<std::string> variants;          // every workload's, in the suite's order
    std::vector<ComparisonResult> workloads;    // in the suite's order
    // times[w][v]: the median over seeds of variant v's time to workload w's target
    // (epochs or seconds, Suite::measure); infinite when half the seeds or more never reached it.
    std::vector<std::vector<double>> times;
    Profile profile;
    std::vector<std::size_t> ranking;           // variant indices, largest profile area first
};

// Runs every workload's comparison into <dir>/<workload>/ (dir: options.out, or
// runs/<name>/<timestamp>; with options.resume, the suite to continue: each workload
// resumes, or starts when it had not), then writes suite.csv, suite.json,
// profile.svg and report.html into dir and prints the ranking. Over several
// processes (MPI) every comparison is shared out as run_comparison does; rank 0
// alone writes and prints, the others return with no results.
SuiteResult run_suite(const Suite& s, const Registry& registry, const RunOptions& options, int jobs, std::ostream& log);

// The ranking, cell by cell: a header, then one row per variant, best profile area first.
std::vector<std::vector<std::string>> suite_rows(const Suite& s, const SuiteResult& r);
// The same as printed: columns aligned, two spaces apart.
std::string suite_table(const Suite& s, const SuiteResult& r);

}  // namespace bp
