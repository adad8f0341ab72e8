// One experiment from data to run folder: what `backplane run` and `validate` do.
#pragma once

#include "model/experiment.hpp"
#include "model/network.hpp"
#include "train/trainer.hpp"

#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <span>

namespace bp {

// Everything built and checked before the first step: a bad shape, a loss that
// does not fit the data, a dataset that cannot be read all fail here.
struct PreparedRun {
    Data data;                      // train (validation rows removed) and test
    Split validation;
    std::unique_ptr<Network> network;
    std::shared_ptr<Loss> loss;
    std::shared_ptr<Optimizer> optimizer;
    std::shared_ptr<Schedule> schedule;
    Metric best_by = Metric::train_loss;   // what best.safetensors and train.patience follow
};

// Data, network, loss, optimizer and schedule of `e`, all checked. `fresh`: the run
// starts from its initialisation, so init_from applies (a resumed or evaluated run
// takes every tensor from its own checkpoint instead).
PreparedRun prepare_run(const Experiment& e, const Registry& registry, bool fresh = true);

// The learning rate of `epoch` (1-based): linear warmup from base / (warmup + 1) over
// the first e.warmup epochs, then the schedule over the rest, given the results of
// the epochs before. With e.per_step, of `step` (1-based) of the epoch: the same over
// the run's steps (steps_per_epoch each), warmup counted in steps, every finished
// epoch's results given.
double scheduled_rate(const Experiment& e, const Schedule& schedule, double base, int64_t epoch,
                      const std::vector<EpochMetrics>& history, int64_t step = 1, int64_t steps_per_epoch = 1);

// A run's folder that this experiment may not continue (resume_refusals): a
// comparison stops at it rather than record the run as failed and rewrite its files.
class ResumeRefused : public Error {
public:
    using Error::Error;
};

struct RunOptions {
    std::filesystem::path out;                 // the run folder; empty: <runs_root>/<name>/<timestamp>
    std::filesystem::path resume;              // a run folder (or checkpoint) to continue; it is the run folder
    std::filesystem::path runs_root = "runs";
    bool overwrite = false;                    // `out` may hold results: replace them (else refused)
    bool quiet = false;
    bool terminal = false;                     // redraw progress in place
    bool profile = false;                      // time every step's phases: timeline.csv, and a summary in the log
    int64_t stop_after = 0;                    // if > 0, stop after this epoch as if killed there (for checks)
    tbb::task_arena* arena = nullptr;          // train in this shared arena (concurrent comparison runs)
    // Train over these processes (data-parallel, MPI): each runs its share of every
    // step, all end with the same bits, and rank 0 alone writes the run folder and logs.
    Cluster* cluster = nullptr;
    std::function<void(const EpochMetrics&)> on_epoch;   // after each epoch, even when quiet
};

struct RunResult {
    std::filesystem::path dir;
    std::vector<EpochMetrics> history;
    bool diverged = false;
    std::vector<Matrix> weights;               // final parameters, in order
    std::string fingerprint;
    int threads_used = 0;                      // threads that ran training shards in this process
    int64_t bytes_per_step = 0;                // the busiest process sent the others per step (0 alone)
};

RunResult run_experiment(const Experiment& e, const Registry& registry, const RunOptions& options,
                         std::ostream& log);

// Every process of a job must train the same experiments (the same file, the same
// --set; train.threads may differ, it never changes the bits): throws bp::Error on a
// process whose experiments differ from rank 0's, naming the keys. Every process calls it.
void check_same_experiments(Cluster& cluster, std::span<const Experiment> experiments);

// What differs between a run's saved config (its config.yaml, or its checkpoint's) and
// `e`, key by key, that forbids `e` to continue the run: everything but train.threads,
// which never changes the bits, and train.epochs, which a resumed run checks against its
// history (it may grow while the epochs done keep their learning rates).
std::vector<std::string> config_changes_refused(const std::string& saved_config, const Experiment& e);

// The checkpoint a run folder continues from (checkpoints/last.safetensors), or the file itself.
std::filesystem::path checkpoint_file(const std::filesystem::path& run_or_file);

// A trained model: its checkpoint restored into what the config saved in it builds.
struct TrainedModel {
    std::filesystem::path file;   // the checkpoint read
    Experiment experiment;
    PreparedRun run;
    int64_t epoch = 0;            // epochs trained
};

// `overrides` apply to the saved config (e.g. data.test_images=...). Throws bp::Error
// when the checkpoint does not fit the model its config builds.
TrainedModel load_trained(const std::filesystem::path& run_or_file, const std::vector<std::string>& overrides,
                          Registry& registry);

// A trained model's test-set results.
struct EvalResult {
    Experiment experiment;
    int64_t epoch = 0;
    Evaluation test;
    Eigen::MatrixXi confusion;   // (true, predicted); empty for regression
};

EvalResult evaluate_checkpoint(const std::filesystem::path& run_or_file, const std::vector<std::string>& overrides,
                               Registry& registry);

}  // namespace bp
