// What a run leaves on disk, each file written whole or not at all.
#pragma once

#include "model/experiment.hpp"
#include "train/trainer.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace bp {

// Writes `content` to a temporary file beside `path`, then renames it over `path`: a
// reader, a killed process or a full disk never leaves half a file, and the old file
// stays until the new one is whole. (Not synced to the disk: a power cut may lose it.) Throws bp::Error naming
// the file and the system's reason (disk full, file too large, no permission).
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

// runs/<name>/<YYYYmmdd-HHMMSS>[-N]/ under `root`, created by this call and by no
// other: concurrent runs of one experiment each get their own.
std::filesystem::path new_run_dir(const std::filesystem::path& root, const std::string& name);

// Removes from `dir` (not below it) the temporary files of writes killed before their
// rename (NAME.tmp.PID.THREAD): a resumed run or comparison writes those files anew.
void remove_temporaries(const std::filesystem::path& dir);

// Makes `dir` ready for a run or a comparison (`what`: "run" or "comparison") given as
// --out: created when missing, used as it is when empty. A folder that holds results is
// refused, naming --resume, unless `overwrite`: then what a run or comparison wrote
// there is removed. Anything else in it (a file Backplane does not write, a link) is
// never touched: such a folder is refused either way, naming what it holds.
void claim_out_dir(const std::filesystem::path& dir, const std::string& what, bool overwrite);

// epoch, the six metrics (metrics.hpp), seconds, samples_per_second, lr
std::string metrics_csv(const std::vector<EpochMetrics>& history);

// Training samples per second of training time over the whole history.
double samples_per_second(const std::vector<EpochMetrics>& history);

struct RunSummary {
    std::string name;
    uint64_t seed = 0;
    int threads = 0;                   // per process
    int processes = 1;                 // that trained it together (MPI)
    int64_t bytes_per_step = 0;        // the busiest process sent the others in a step
    int64_t parameters = 0;
    std::string status;   // "completed", "diverged", "stopped early" or "stopped"
    std::vector<EpochMetrics> history;
    double wall_seconds = 0;
    double peak_rss_mib = 0;           // the process's peak resident memory so far
    std::string weights_fingerprint;   // FNV-1a of every parameter's bytes, in order
    Eigen::MatrixXi confusion;         // test set, (true, predicted); empty without one
};

// summary.json; its "history" is every epoch's metrics, exact (history_json).
std::string summary_json(const RunSummary& s);
// Reads back what summary_json wrote (confusion aside). Throws bp::Error naming the file.
RunSummary read_summary(const std::filesystem::path& file);

// The per-epoch metrics as JSON, and back, exactly: a resumed run's files continue
// the history bit for bit.
nlohmann::json history_json(const std::vector<EpochMetrics>& history);
std::vector<EpochMetrics> parse_history_json(const nlohmann::json& json);

// 16 hex digits identifying the exact bits of the weights.
std::string fingerprint(const std::vector<const Matrix*>& tensors);

// The peak resident set size of this process so far, in MiB (getrusage).
double peak_rss_mib();

}  // namespace bp
