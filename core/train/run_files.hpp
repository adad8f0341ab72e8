// What a run leaves on disk, each file written whole or not at all.
#pragma once

#include "model/experiment.hpp"
#include "train/trainer.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace bp {

// Writes `content` to a temporary file beside `path`, then renames it over `path`:
// a reader (or a killed run) never sees half a file.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

// runs/<name>/<YYYYmmdd-HHMMSS>[-N]/ under `root`, created; never an existing folder.
std::filesystem::path new_run_dir(const std::filesystem::path& root, const std::string& name);

// epoch,train_loss,train_accuracy,val_loss,val_accuracy,test_loss,test_accuracy,seconds,samples_per_second,lr
std::string metrics_csv(const std::vector<EpochMetrics>& history);

struct RunSummary {
    std::string name;
    uint64_t seed = 0;
    int threads = 0;
    int64_t parameters = 0;
    std::string status;   // "completed" or "diverged"
    std::vector<EpochMetrics> history;
    double wall_seconds = 0;
    double peak_rss_mib = 0;           // the process's peak resident memory so far
    std::string weights_fingerprint;   // FNV-1a of every parameter's bytes, in order
    Eigen::MatrixXi confusion;         // test set, (true, predicted); empty without one
};

std::string summary_json(const RunSummary& s);

// The per-epoch metrics as JSON, and back (for checkpoints: a resumed run's
// metrics.csv continues the history exactly).
std::string history_json(const std::vector<EpochMetrics>& history);
std::vector<EpochMetrics> parse_history_json(const std::string& json);

// 16 hex digits identifying the exact bits of the weights.
std::string fingerprint(const std::vector<const Matrix*>& tensors);

// The peak resident set size of this process so far, in MiB (getrusage).
double peak_rss_mib();

}  // namespace bp
