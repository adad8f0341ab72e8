// A batch of a comparison's runs trained together: `jobs` at a time in one oneTBB
// arena, or handed out over processes (RunQueue), each run exactly what it is alone,
// with one progress line per run as it ends. A comparison trains one batch, or two
// when it tunes: the trials, then the seeds of each variant's best trial.
#pragma once

#include "train/run.hpp"

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

namespace bp {

struct ComparisonRun {
    std::string variant;
    uint64_t seed = 0;
    int trial = 0;       // a tuning trial (1-based), or 0 for a run of a seed
    RunResult result;
    std::string error;   // the run failed (an error, not divergence); the others went on
};

struct PlannedRun {
    const Experiment* experiment;
    std::filesystem::path dir;   // its folder
    std::string variant;
    uint64_t seed = 0;
    int trial = 0;
};

// Trains `runs` (every process passes the same list) and returns their results, in
// the list's order, on rank 0 or alone (the other processes get an empty list).
// options.resume set: runs that finished are read back from their folders, runs that
// were cut continue from their last checkpoint; a folder made by another experiment
// is refused before any run trains. `title` heads the progress ("comparing 7
// variants x 3 seeds").
std::vector<ComparisonRun> train_batch(const std::vector<PlannedRun>& runs, const std::string& title,
                                       const Registry& registry, const RunOptions& options, int jobs, std::ostream& log);

}  // namespace bp
