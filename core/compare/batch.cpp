#include "compare/batch.hpp"

#include "compare/run_queue.hpp"
#include "text/format.hpp"
#include "text/suggest.hpp"
#include "train/progress.hpp"
#include "train/run_files.hpp"

#include <tbb/info.h>
#include <yaml-cpp/yaml.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <ostream>
#include <sstream>
#include <thread>

namespace bp {

namespace fs = std::filesystem;

namespace {

// A run of the comparison being continued: finished (its summary read back, so it is
// not trained again), cut (continued from its last checkpoint) or not begun.
enum class RunState { fresh, cut, finished };

RunState state_of(const Experiment& e, const fs::path& dir) {
    if (!fs::exists(dir / "config.yaml")) return RunState::fresh;
    // Made by this experiment? A longer one continues the run, if its checkpoint allows.
    const std::string saved = read_experiment_file(dir / "config.yaml");
    if (const auto refused = config_changes_refused(saved, e); !refused.empty())
        throw Error("the run in " + dir.string() + " was made by another experiment: " + join(refused, "; ") +
                    "; resume the comparison with the file it was made with, or start a new one");
    // Fewer epochs than it was made with: refused now, before anything trains (a longer
    // run is checked when it resumes, against the rates of the epochs it ran).
    const int64_t made = YAML::Load(saved)["train"]["epochs"].as<int64_t>();
    if (e.train.epochs < made)
        throw Error("the run in " + dir.string() + " was made with train.epochs: " + std::to_string(made) + ", and " +
                    std::to_string(e.train.epochs) + " would end before it; resume the comparison with the file it was "
                    "made with, or start a new one");
    bool longer = false;
    for (const auto& change : experiment_changes(saved, to_yaml(e))) longer |= change.rfind("train.epochs:", 0) == 0;
    if (!longer && fs::exists(dir / "summary.json")) return RunState::finished;
    return fs::exists(dir / "checkpoints" / "last.safetensors") ? RunState::cut : RunState::fresh;
}

RunResult finished_result(const fs::path& dir) {
    const RunSummary s = read_summary(dir / "summary.json");
    RunResult r;
    r.dir = dir;
    r.history = s.history;
    r.diverged = s.status == "diverged";
    r.fingerprint = s.weights_fingerprint;
    return r;
}

std::string name_of(const PlannedRun& p) {
    return p.variant + (p.trial > 0 ? " trial " + std::to_string(p.trial) : " seed " + std::to_string(p.seed));
}

}  // namespace

std::vector<ComparisonRun> train_batch(const std::vector<PlannedRun>& runs, const std::string& title,
                                       const Registry& registry, const RunOptions& options, int jobs, std::ostream& log) {
    // Over several processes, rank 0 leads: it keeps the queue and the results, and prints.
    Cluster* cluster = options.cluster;
    const bool leads = !cluster || cluster->rank() == 0;
    const std::size_t total = runs.size();
    // Every run in its slot, so the order of the results never depends on which ends first.
    std::vector<ComparisonRun> results(total);
    std::vector<RunState> states(total, RunState::fresh);
    std::size_t done = 0, cut = 0;
    auto prepare = [&] {
        if (!leads || options.resume.empty()) return;
        // Every run is checked before any is trained: a changed experiment changes nothing.
        for (std::size_t i = 0; i < total; ++i) states[i] = state_of(*runs[i].experiment, runs[i].dir);
        for (std::size_t i = 0; i < total; ++i) {
            if (states[i] == RunState::cut) ++cut;
            if (states[i] != RunState::finished) continue;
            results[i] = {runs[i].variant, runs[i].seed, runs[i].trial, finished_result(runs[i].dir), {}};
            ++done;
        }
    };
    if (cluster) cluster->agree(prepare);
    else prepare();
    std::deque<RunQueue::Assignment> todo;   // rank 0's (the others ask it)
    for (std::size_t i = 0; i < total; ++i)
        if (states[i] != RunState::finished) todo.push_back({i, states[i] == RunState::cut});
    RunQueue queue(cluster, std::move(todo));
    const bool quiet = options.quiet || !leads;
    if (!quiet) {
        log << title << " (" << total << " runs)";
        if (cluster) log << " over " << cluster->size() << " processes";
        log << "\n";
        if (!options.resume.empty())
            log << "resuming: " << done << " runs finished, " << cut << " continue from their last checkpoint, "
                << total - done - cut << " to run\n";
    }
    const auto start = std::chrono::steady_clock::now();
    const std::size_t done_before = done;
    std::mutex progress;   // guards results, done, refused and the progress lines
    // A run its folder may not continue: the batch stops, its trainers take no more runs.
    std::exception_ptr refused;
    std::atomic<bool> stop{false};
    tbb::task_arena* shared_arena = nullptr;
    // On a terminal, one line redrawn in place: the runs in flight and their epochs.
    std::map<std::size_t, int64_t> running;   // run index -> epochs done
    auto redraw = [&] {
        if (quiet || !options.terminal) return;
        std::string line = "\r\033[K[" + std::to_string(done) + "/" + std::to_string(total) + " done]";
        double progress_runs = double(done - done_before);
        for (const auto& [i, e] : running) {
            const int64_t epochs = runs[i].experiment->train.epochs;
            line += "  " + name_of(runs[i]) + " epoch " + std::to_string(e) + "/" + std::to_string(epochs);
            progress_runs += double(e) / double(epochs);
        }
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (progress_runs > 0)
            line += "  ETA " + human_seconds(elapsed / progress_runs * (double(total - done_before) - progress_runs));
        log << line << std::flush;
    };
    // A run has ended, here or (rank >= 0) in another process: its slot and its line.
    auto record = [&](std::size_t i, ComparisonRun run, int rank) {
        const std::lock_guard lock(progress);
        results[i] = std::move(run);
        ++done;
        running.erase(i);
        if (quiet) return;
        const auto& h = results[i].result.history;
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const std::string what = !results[i].error.empty() ? "FAILED: " + results[i].error
                                 : results[i].result.diverged ? "DIVERGED at epoch " + std::to_string(h.back().epoch)
                                                              : metrics_line(h.back());
        const double per_run = elapsed / double(done - done_before);
        log << (options.terminal ? "\r\033[K" : "") << "[" << done << "/" << total << "] " << name_of(runs[i])
            << (rank >= 0 ? " (rank " + std::to_string(rank) + ")" : "") << ": " << what << "  ("
            << human_seconds(elapsed) << ", ETA " << human_seconds(per_run * double(total - done)) << ")\n";
        redraw();
        log << std::flush;
    };
    auto train = [&](const RunQueue::Assignment& a) {
        const std::size_t i = a.index;
        RunOptions one = options;
        one.out = runs[i].dir;
        one.resume.clear();
        // A run killed before its first checkpoint starts again in its own folder.
        one.overwrite = !a.cut;
        if (a.cut) std::swap(one.out, one.resume);
        one.quiet = true;
        one.arena = shared_arena;
        one.cluster = nullptr;   // a run is trained whole by one process
        one.on_epoch = [&, i](const EpochMetrics& m) {
            const std::lock_guard lock(progress);
            running[i] = m.epoch;
            redraw();
        };
        std::ostringstream quiet_log;
        ComparisonRun run{runs[i].variant, runs[i].seed, runs[i].trial, {}, {}};
        try {
            run.result = run_experiment(*runs[i].experiment, registry, one, quiet_log);
        } catch (const ResumeRefused&) {
            const std::lock_guard lock(progress);
            if (!refused) refused = std::current_exception();
            stop = true;
            return;
        } catch (const std::exception& e) {   // one failed run does not cost the others
            run.error = e.what();
            run.result.dir = runs[i].dir;
        }
        queue.finished(i, run.error);
        if (leads) record(i, std::move(run), cluster ? 0 : -1);
    };
    // This process's trainers: `jobs` runs at a time, each taken from the queue as one ends.
    auto work = [&] {
        if (jobs <= 1) {
            while (!stop) {
                const auto a = queue.next();
                if (!a) break;
                train(*a);
            }
            return;
        }
        // One arena for every run, as wide as train.threads and no wider than the
        // machine (oneTBB caps workers at the cores the trainers allow): `jobs` runs at a
        // time, each run's shards nested in it.
        const int64_t wanted = runs.empty() ? 0 : runs[0].experiment->train.threads;
        const int threads = wanted > 0 ? int(wanted) : tbb::info::default_concurrency();
        tbb::task_arena arena(std::min(threads, tbb::info::default_concurrency()));
        shared_arena = &arena;
        arena.execute([&] {
            tbb::task_group group;
            for (int j = 0; j < std::min(jobs, arena.max_concurrency()); ++j)
                group.run([&] {
                    // Isolated: a worker waiting inside one run's parallel_for must not
                    // pick up another whole run and stall the first behind it.
                    tbb::this_task_arena::isolate([&] {
                        while (!stop) {
                            const auto a = queue.next();
                            if (!a) break;
                            train(*a);
                        }
                    });
                });
            group.wait();
        });
    };
    if (!cluster) {
        work();
        if (refused) std::rethrow_exception(refused);
        return results;
    }
    if (!leads) {
        work();
        // Over several processes the job ends here (main aborts it): rank 0 would wait for runs never reported.
        if (refused) std::rethrow_exception(refused);
        queue.leave();
        return {};   // rank 0 holds the results
    }
    // Rank 0's own trainers work beside the thread that serves the others.
    std::exception_ptr failure;
    std::thread trainers([&] {
        try {
            work();
        } catch (...) {
            failure = std::current_exception();
        }
    });
    auto remote_finished = [&](std::size_t i, int rank, const std::string& error) {
        ComparisonRun run{runs[i].variant, runs[i].seed, runs[i].trial, {}, error};
        run.result.dir = runs[i].dir;
        // Its files, as that process wrote them: a file system that is not shared shows here.
        if (error.empty()) try {
                run.result = finished_result(run.result.dir);
            } catch (const std::exception& e) {
                run.error = "rank " + std::to_string(rank) + " trained it, but its summary cannot be read here: " +
                            e.what() + " (the comparison's folder must be on a file system every process shares)";
            }
        record(i, std::move(run), rank);
    };
    try {
        queue.serve(remote_finished);
    } catch (const std::exception& e) {
        // The other processes wait on this thread, and the trainers beside it may run
        // for long: end the job now, as any failure during training does.
        std::cerr << "backplane: error: " << e.what() << "\n";
        Cluster::abort(1);
    }
    trainers.join();
    if (failure) std::rethrow_exception(failure);
    if (refused) {
        // The others wait on this process's queue: end the job with the reason.
        std::cerr << "backplane: error: " << [&] {
            try {
                std::rethrow_exception(refused);
            } catch (const std::exception& e) {
                return std::string(e.what());
            }
        }() << "\n";
        Cluster::abort(1);
    }
    return results;
}

}  // namespace bp
