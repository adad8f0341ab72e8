#include "train/run.hpp"

#include "train/checkpoint.hpp"
#include "train/progress.hpp"
#include "train/run_files.hpp"
#include "text/format.hpp"
#include "text/suggest.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <limits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <ostream>
#include <utility>

namespace fs = std::filesystem;

namespace bp {

namespace {

// The dataset must deliver what it declares; a plugin bug or a bad file shows here.
void check_data(const Data& d, const std::string& where, const std::string& source) {
    auto fail = [&](const std::string& msg) { throw Error(where + ": dataset '" + source + "': " + msg); };
    auto check_split = [&](const Split& s, const char* which) {
        if (s.x.rows() != s.y.rows())
            fail(std::string(which) + " has " + std::to_string(s.x.rows()) + " inputs but " +
                 std::to_string(s.y.rows()) + " targets");
        if (s.x.cols() != d.input.size())
            fail(std::string(which) + " rows have " + std::to_string(s.x.cols()) + " values, the input shape " +
                 d.input.str() + " needs " + std::to_string(d.input.size()));
        if (s.y.cols() != d.target.columns)
            fail(std::string(which) + " targets have " + std::to_string(s.y.cols()) + " columns, expected " +
                 std::to_string(d.target.columns));
        if (d.target.classes > 65536)
            fail("declares " + std::to_string(d.target.classes) + " classes; are the labels regression targets?");
        if (!s.x.allFinite()) fail(std::string(which) + " has inputs that are NaN or infinite");
        if (d.target.classes > 0 && s.y.size() > 0 &&
            (s.y.minCoeff() < 0 || s.y.maxCoeff() >= float(d.target.classes)))
            fail(std::string(which) + " has labels outside 0.." + std::to_string(d.target.classes - 1));
    };
    if (d.train.x.rows() == 0) fail("the training set is empty");
    check_split(d.train, "the training set");
    if (d.test) check_split(*d.test, "the test set");
    if (d.validation) check_split(*d.validation, "the validation set");
}

// The metric checkpoints/best.safetensors and train.patience follow.
Metric best_metric(const Experiment& e, const PreparedRun& p) {
    if (e.train.best_metric == "auto") return p.validation.x.rows() > 0 ? Metric::val_loss : Metric::train_loss;
    const Metric m = *metric_named(e.train.best_metric);
    if ((m == Metric::val_loss || m == Metric::val_accuracy) && p.validation.x.rows() == 0)
        throw Error(e.best_metric_where + ": train.best_metric is " + to_string(m) +
                    ", but the run has no validation split (set data.validation_split, or the held-out part of a "
                    "dataset that keeps its own, such as text's validation)");
    if ((m == Metric::test_loss || m == Metric::test_accuracy) && !p.data.test)
        throw Error(e.data.where + ": train.best_metric is " + to_string(m) + ", but the data (" + e.data.name +
                    ") has no test set");
    return m;
}

}  // namespace

namespace {

// init_from: the listed entries' parameters and buffers from another run's checkpoint.
// Every entry name that matches nothing, and every tensor missing or of another shape,
// is listed before anything is changed.
void initialise_from(const InitFrom& init, Network& net) {
    std::error_code ec;
    const fs::path file = fs::is_directory(init.checkpoint, ec) ? init.checkpoint / "checkpoints" / "last.safetensors"
                                                                : init.checkpoint;
    Checkpoint c;
    try {
        c = load_checkpoint(file);
    } catch (const Error& err) {
        throw Error(init.where + ": init_from: " + err.what());
    }
    auto selected = [&](const std::string& label, const std::string& name) {
        return label == name || label.rfind(name + ".", 0) == 0;   // a block's use: every layer in it
    };
    std::vector<std::string> labels;
    for (const auto& l : net.layers()) labels.push_back(l.label);
    for (const auto& name : init.nodes)
        if (std::none_of(labels.begin(), labels.end(), [&](const std::string& l) { return selected(l, name); }))
            throw Error(init.where + ": init_from.nodes: '" + name + "' is no entry of the model" +
                        did_you_mean(name, labels));
    std::vector<std::string> problems;
    std::vector<std::pair<Matrix*, const Matrix*>> copies;
    for (const auto& list : {net.parameters(), net.buffers()})
        for (const auto& p : list) {
            const std::string& label = p.node->label;
            if (!init.nodes.empty() && std::none_of(init.nodes.begin(), init.nodes.end(),
                                                    [&](const std::string& n) { return selected(label, n); }))
                continue;
            const NamedTensor* t = c.find("model." + p.name);
            if (!t) problems.push_back(p.name + " is not in it");
            else if (t->value.rows() != p.value->rows() || t->value.cols() != p.value->cols())
                problems.push_back(p.name + " is " + std::to_string(t->value.rows()) + "x" +
                                   std::to_string(t->value.cols()) + " there, " + std::to_string(p.value->rows()) + "x" +
                                   std::to_string(p.value->cols()) + " here");
            else copies.emplace_back(p.value, &t->value);
        }
    if (!problems.empty())
        throw Error(init.where + ": init_from: checkpoint " + file.string() + " does not fit: " + join(problems, "; "));
    for (auto [to, from] : copies) *to = *from;
}

}  // namespace

namespace {

// The rows of a run's steps.csv from epochs up to `epoch` (the second column), as
// they were written; none when the file is missing.
std::string step_rows_until(const fs::path& file, int64_t epoch) {
    std::ifstream in(file);
    std::string line, rows;
    std::getline(in, line);   // the header, written afresh
    while (std::getline(in, line)) {
        const std::size_t comma = line.find(',');
        if (comma == std::string::npos) break;
        char* end = nullptr;
        const long long e = std::strtoll(line.c_str() + comma + 1, &end, 10);
        if (e < 1 || e > epoch) break;
        rows += line + "\n";
    }
    return rows;
}

int64_t steps_per_epoch(const Experiment& e, const PreparedRun& p) {
    return (p.data.train.x.rows() + e.train.batch_size - 1) / e.train.batch_size;
}

}  // namespace

PreparedRun prepare_run(const Experiment& e, const Registry& registry, bool fresh) {
    PreparedRun p;
    try {
        auto dataset = registry.create<Dataset>(e.data.name, e.data.params);
        p.data = dataset->load({e.seed, e.file.parent_path().string()});
    } catch (const Error& err) {
        throw Error(e.data.where + ": " + err.what());
    }
    check_data(p.data, e.data.where, e.data.name);
    if (p.data.validation && e.validation_split > 0)
        throw Error(e.data.where + ": dataset '" + e.data.name + "' holds out its own validation set; remove "
                    "data.validation_split");
    p.validation = p.data.validation ? *std::exchange(p.data.validation, std::nullopt)
                                     : split_validation(p.data.train, e.validation_split, e.seed);
    if (p.data.train.x.rows() == 0) throw Error(e.data.where + ": validation_split leaves no training samples");

    if (e.augment.any() && p.data.input.rank() != 3)
        throw Error(e.augment_where + ": data.augment transforms images [C, H, W], but " + e.data.name +
                    "'s samples are " + p.data.input.str());
    p.network = std::make_unique<Network>(e.model, p.data.input, e.seed, registry);
    if (e.init_from && fresh) initialise_from(*e.init_from, *p.network);
    try {
        p.loss = registry.create<Loss>(e.loss.name, e.loss.params);
        p.loss->check(p.network->output(), p.data.target);
    } catch (const Error& err) {
        const auto& last = p.network->layers().back();
        throw Error(e.loss.where + ": " + err.what() + " (the last layer, " + last.label + ", outputs " +
                    last.output.str() + ")");
    }
    try {
        p.optimizer = registry.create<Optimizer>(e.optimizer.name, e.optimizer.params);
        p.schedule = registry.create<Schedule>(e.schedule.name, e.schedule.params);
    } catch (const Error& err) {
        throw Error(e.optimizer.where + ": " + err.what());
    }
    // The schedule sees, once, which metrics this run will measure (0) and which not
    // (NaN): one that watches a missing metric fails now, not after the first epoch.
    const bool accuracy = p.loss->count_correct(Matrix::Zero(1, p.network->output().size()),
                                                Matrix::Zero(1, p.data.target.columns)) >= 0;
    const bool validation = p.validation.x.rows() > 0, test = p.data.test.has_value();
    EpochMetrics probe;
    probe.epoch = 1;
    probe.train = {0, accuracy ? 0 : no_value};
    if (validation) probe.validation = {0, accuracy ? 0 : no_value};
    if (test) probe.test = {0, accuracy ? 0 : no_value};
    try {
        p.schedule->learning_rate(1.0, 2, 2, std::span(&probe, 1));
    } catch (const Error& err) {
        throw Error(e.schedule.where + ": " + err.what());
    }
    if (e.per_step && e.warmup >= e.train.epochs * steps_per_epoch(e, p))
        throw Error(e.schedule.where + ": optimizer.schedule.warmup = " + std::to_string(e.warmup) +
                    " steps leaves none of the run's " + std::to_string(e.train.epochs * steps_per_epoch(e, p)) +
                    " steps (" + std::to_string(steps_per_epoch(e, p)) + " per epoch) for the schedule");
    p.best_by = best_metric(e, p);
    return p;
}


double scheduled_rate(const Experiment& e, const Schedule& schedule, double base, int64_t epoch,
                      const std::vector<EpochMetrics>& history, int64_t step, int64_t steps_per_epoch) {
    if (e.per_step) {
        const int64_t at = (epoch - 1) * steps_per_epoch + step, steps = e.train.epochs * steps_per_epoch;
        if (at <= e.warmup) return base * double(at) / double(e.warmup + 1);
        const std::size_t done = std::min(history.size(), std::size_t(epoch - 1));
        return schedule.learning_rate(base, at - e.warmup, steps - e.warmup, std::span(history).first(done));
    }
    if (epoch <= e.warmup) return base * double(epoch) / double(e.warmup + 1);
    // After warmup the schedule runs over the remaining epochs, and sees only their results.
    const std::size_t first = std::min(history.size(), std::size_t(e.warmup));
    const std::size_t last = std::min(history.size(), std::size_t(epoch - 1));
    return schedule.learning_rate(base, epoch - e.warmup, e.train.epochs - e.warmup,
                                  std::span(history).subspan(first, last - first));
}

std::vector<std::string> config_changes_refused(const std::string& saved_config, const Experiment& e) {
    std::vector<std::string> refused;
    for (const auto& change : experiment_changes(saved_config, to_yaml(e)))
        if (change.rfind("train.epochs:", 0) != 0 && change.rfind("train.threads:", 0) != 0) refused.push_back(change);
    return refused;
}

namespace {

const char* const checkpoint_format = "backplane-checkpoint-1";

// Every tensor a checkpoint holds: "model.<layer>.<tensor>" for parameters and
// buffers, "optimizer.<state>" for the optimizer.
Checkpoint capture(const Experiment& e, const Network& net, const Optimizer& opt,
                   const std::vector<EpochMetrics>& history) {
    Checkpoint c;
    for (const auto& list : {net.parameters(), net.buffers()})
        for (const auto& p : list) c.tensors.push_back({"model." + p.name, *p.value});
    for (auto& t : opt.state()) c.tensors.push_back({"optimizer." + t.name, std::move(t.value)});
    c.metadata = {{"format", checkpoint_format},
                  {"epoch", std::to_string(history.empty() ? 0 : history.back().epoch)},
                  {"config", to_yaml(e)},
                  {"experiment_dir", e.file.parent_path().string()},
                  {"history", history_json(history).dump()}};
    return c;
}

// Puts a checkpoint's tensors back. Every difference from the model is listed
// before anything is changed.
void restore(const Checkpoint& c, const std::string& source, Network& net, Optimizer& opt) {
    if (c.metadata.count("format") == 0 || c.metadata.at("format") != checkpoint_format)
        throw Error("checkpoint " + source + " was not written by Backplane (no format '" + checkpoint_format + "')");
    if (c.metadata.count("history") == 0) throw Error("checkpoint " + source + " has no metrics history");
    std::vector<std::string> problems;
    std::vector<std::pair<Matrix*, const Matrix*>> copies;
    std::vector<std::string> expected;
    for (const auto& list : {net.parameters(), net.buffers()}) {
        for (const auto& p : list) {
            const std::string name = "model." + p.name;
            expected.push_back(name);
            const NamedTensor* t = c.find(name);
            if (!t) problems.push_back(name + " is missing");
            else if (t->value.rows() != p.value->rows() || t->value.cols() != p.value->cols())
                problems.push_back(name + " is " + std::to_string(t->value.rows()) + "x" + std::to_string(t->value.cols()) +
                                   ", the model's " + std::to_string(p.value->rows()) + "x" + std::to_string(p.value->cols()));
            else copies.emplace_back(p.value, &t->value);
        }
    }
    std::vector<NamedTensor> opt_state;
    for (const auto& t : c.tensors) {
        if (t.name.rfind("optimizer.", 0) == 0) opt_state.push_back({t.name.substr(10), t.value});
        else if (std::find(expected.begin(), expected.end(), t.name) == expected.end())
            problems.push_back(t.name + " is not in the model");
    }
    if (!problems.empty())
        throw Error("checkpoint " + source + " does not fit this model (another model or config?): " + join(problems, "; "));
    try {
        opt.load_state(opt_state);
    } catch (const Error& err) {
        throw Error("checkpoint " + source + ": the optimizer state does not fit: " + err.what());
    }
    for (auto [to, from] : copies) *to = *from;
}

// The model's outputs score classes (one per class, or one logit for two): a
// confusion matrix means something.
bool outputs_classes(const Network& net, const TargetInfo& t) {
    const int64_t width = net.output().size();
    return t.classes > 0 && (width == t.classes || (width == 1 && t.classes == 2));
}

// Lower is better, whatever the metric.
double best_score(Metric metric, const EpochMetrics& m) {
    return lower_is_better(metric) ? m.get(metric) : -m.get(metric);
}

// Why `e` cannot continue the run whose checkpoint is `c` (empty: it can), after the
// keys config_changes_refused allows: train.epochs may only grow, and only while every
// epoch run so far gets the same learning rate under the longer run (a cosine spread
// over more epochs would have given the first ones other rates, and the run would not
// be the one its config.yaml then describes).
std::vector<std::string> resume_refusals(const Experiment& e, const Checkpoint& c, const PreparedRun& p,
                                         const std::vector<EpochMetrics>& history) {
    std::vector<std::string> refusals = config_changes_refused(c.metadata.at("config"), e);
    if (!refusals.empty()) return refusals;
    const int64_t done = int64_t(history.size());
    if (e.train.epochs < done) {
        refusals.push_back("train.epochs: " + std::to_string(e.train.epochs) + " is fewer than the " +
                           std::to_string(done) + " epochs the run has done");
        return refusals;
    }
    const double base = p.optimizer->learning_rate();
    for (int64_t epoch = 1; epoch <= done; ++epoch) {
        const double was = history[std::size_t(epoch - 1)].learning_rate;
        const double now = scheduled_rate(e, *p.schedule, base, epoch, history, 1, steps_per_epoch(e, p));
        if (std::memcmp(&was, &now, sizeof was) != 0) {
            refusals.push_back("train.epochs: the schedule over " + std::to_string(e.train.epochs) +
                               " epochs gives epoch " + std::to_string(epoch) + " the rate " + shortest_double(now) +
                               ", where the run used " + shortest_double(was) +
                               " (train longer with a schedule that does not span the run, or start a new run)");
            break;
        }
    }
    return refusals;
}

}  // namespace

std::filesystem::path checkpoint_file(const fs::path& run_or_file) {
    return fs::is_directory(run_or_file) ? run_or_file / "checkpoints" / "last.safetensors" : run_or_file;
}

namespace {

// After an epoch: best (when it is `better`), every N epochs, then last, what --resume
// continues from: a kill between them leaves last at the epoch before, which resume
// redoes and so writes the others again.
void save_checkpoints(const Experiment& e, const Network& net, const Optimizer& opt, const RunResult& r, bool better) {
    const Checkpoint c = capture(e, net, opt, r.history);
    const int64_t epoch = r.history.back().epoch;
    if (better) save_checkpoint(r.dir / "checkpoints" / "best.safetensors", c);
    if (e.train.checkpoint_every > 0 && epoch % e.train.checkpoint_every == 0) {
        char name[40];
        std::snprintf(name, sizeof name, "epoch-%04lld.safetensors", static_cast<long long>(epoch));
        save_checkpoint(r.dir / "checkpoints" / name, c);
    }
    save_checkpoint(r.dir / "checkpoints" / "last.safetensors", c);
}

// What the processes of a run must hold alike before the first step besides the
// experiment: the data, which each reads from its own files, and, resuming, the
// checkpoint it restored.
std::string local_state(const PreparedRun& p, const std::vector<EpochMetrics>& history) {
    std::vector<const Matrix*> data{&p.data.train.x, &p.data.train.y, &p.validation.x, &p.validation.y};
    if (p.data.test) data.insert(data.end(), {&p.data.test->x, &p.data.test->y});
    std::vector<const Matrix*> model;
    for (const auto& list : {p.network->parameters(), p.network->buffers()})
        for (const auto& t : list) model.push_back(t.value);
    return std::to_string(p.data.train.x.rows()) + " training rows, data " + fingerprint(data) + ", " +
           std::to_string(history.size()) + " epochs done, weights " + fingerprint(model);
}

void check_same_state(Cluster& cluster, const std::string& own) {
    const std::string first = cluster.broadcast(own);
    if (own != first)
        throw Error("its data or checkpoint differ from rank 0's (here " + own + "; rank 0: " + first +
                    "): every process must read the same files (a shared file system, or identical copies)");
}

}  // namespace

void check_same_experiments(Cluster& cluster, std::span<const Experiment> experiments) {
    std::vector<std::string> own;
    for (const auto& e : experiments) own.push_back(to_yaml(e));
    const char* const between = "\n...\n";   // a YAML document's end: no experiment's text holds it
    const std::string first = cluster.broadcast(join(own, between));
    std::vector<std::string> theirs;
    for (std::size_t at = 0, end; at <= first.size(); at = end + std::strlen(between)) {
        end = std::min(first.find(between, at), first.size());
        theirs.push_back(first.substr(at, end - at));
    }
    if (theirs.size() != own.size())
        throw Error("its experiment file makes " + std::to_string(own.size()) + " runs, rank 0's " +
                    std::to_string(theirs.size()) + "; start every process with the same file and the same --set");
    for (std::size_t i = 0; i < own.size(); ++i) {
        std::vector<std::string> changes;
        for (const auto& change : experiment_changes(theirs[i], own[i]))
            if (change.rfind("train.threads:", 0) != 0) changes.push_back(change);
        if (!changes.empty())
            throw Error("its experiment differs from rank 0's" +
                        (own.size() > 1 ? " in run " + std::to_string(i + 1) + " (" + experiments[i].name + ")" : "") +
                        ": " + join(changes, "; ") + "; start every process with the same file and the same --set");
    }
}

RunResult run_experiment(const Experiment& e, const Registry& registry, const RunOptions& options,
                         std::ostream& log) {
    const auto start = std::chrono::steady_clock::now();
    // Over several processes, rank 0 alone writes files and logs.
    const bool writes = !options.cluster || options.cluster->rank() == 0;
    const bool quiet = options.quiet || !writes;
    PreparedRun p;
    std::unique_ptr<Trainer> trainer;
    RunResult result;
    // Everything that can fail before the first step. Over several processes, all of
    // them go on only if every one succeeded (else one message, from the first failed).
    auto prepare = [&] {
        if (options.profile && options.arena)
            throw Error("--profile times one run alone on its threads, not runs sharing an arena");
        if (options.cluster) check_same_experiments(*options.cluster, std::span(&e, 1));
        p = prepare_run(e, registry, options.resume.empty());
        // A batch is never larger than the data: buffers are sized for one.
        TrainConfig config = e.train;
        config.batch_size = std::min(config.batch_size, int64_t(p.data.train.x.rows()));
        trainer = std::make_unique<Trainer>(*p.network, p.loss, p.optimizer, config, e.seed, e.augment, options.arena,
                                            options.cluster);
        if (options.profile) trainer->start_profile();
        // Resuming checks the checkpoint against the model before any file is touched.
        if (!options.resume.empty()) {
            if (!fs::is_directory(options.resume))
                throw Error("--resume " + options.resume.string() + ": give the run's folder (it continues from its "
                            "checkpoints/last.safetensors)");
            const fs::path file = checkpoint_file(options.resume);
            const Checkpoint c = load_checkpoint(file);
            if (c.metadata.count("format") == 0 || c.metadata.count("config") == 0 || c.metadata.count("history") == 0)
                throw Error("checkpoint " + file.string() + " was not written by Backplane (no format, config or history)");
            try {
                result.history = parse_history_json(nlohmann::json::parse(c.metadata.at("history")));
            } catch (const std::exception& err) {
                throw Error("checkpoint " + file.string() + ": its metrics history is unreadable (" + err.what() + ")");
            }
            if (const auto refusals = resume_refusals(e, c, p, result.history); !refusals.empty())
                throw ResumeRefused("the run in " + options.resume.string() + " cannot be continued by this experiment: " +
                            join(refusals, "; ") + "; resume it with the experiment it was made with (its config.yaml), "
                            "or start a new run");
            restore(c, file.string(), *p.network, *p.optimizer);
        }
    };
    // Then the run folder, once every process has all it needs to train: a failure
    // above leaves no folder behind.
    auto claim = [&] {
        const bool fresh = options.resume.empty();
        result.dir = fresh ? options.out : options.resume;
        if (!writes) return;
        if (fresh && result.dir.empty()) result.dir = new_run_dir(options.runs_root, e.name);
        else if (fresh) claim_out_dir(result.dir, "run", options.overwrite);
        std::error_code ec;
        fs::create_directories(result.dir / "checkpoints", ec);
        if (ec) throw Error("cannot create the run folder " + result.dir.string() + ": " + ec.message());
        remove_temporaries(result.dir);
        remove_temporaries(result.dir / "checkpoints");
        write_file_atomic(result.dir / "config.yaml", to_yaml(e));
    };
    if (!options.cluster) {
        prepare();
        claim();
    } else {
        options.cluster->agree(prepare);
        options.cluster->agree([&] { check_same_state(*options.cluster, local_state(p, result.history)); });
        options.cluster->agree(claim);
    }
    const Metric best_by = p.best_by;

    if (!quiet) {
        log << "experiment " << e.name << ": " << p.data.train.x.rows() << " training samples";
        if (p.validation.x.rows()) log << ", " << p.validation.x.rows() << " validation";
        if (p.data.test) log << ", " << p.data.test->x.rows() << " test";
        if (options.cluster)
            log << ", " << options.cluster->size() << " processes x " << trainer->threads() << " thread(s), "
                << human_count(double(trainer->bytes_per_step())) << "B sent per step\n";
        else log << ", " << trainer->threads() << " thread(s)\n";
        log << p.network->summary();
        if (!result.history.empty()) log << "resuming after epoch " << result.history.back().epoch << "\n";
        log << std::flush;
    }
    double best = std::numeric_limits<double>::infinity();
    int64_t best_epoch = 0;   // for train.patience
    for (const auto& m : result.history)
        if (const double score = best_score(best_by, m); score < best) best = score, best_epoch = m.epoch;
    bool stopped_early = false;
    // steps.csv's rows so far: a resumed run keeps those of the epochs its checkpoint holds.
    std::string step_rows;
    if (writes && trainer->diagnosing() && !result.history.empty())
        step_rows = step_rows_until(result.dir / "steps.csv", result.history.back().epoch);

    const bool bytes = e.loss.name == "softmax_cross_entropy" && p.data.target.columns > 1 &&
                       p.data.target.classes == 256;
    ProgressPrinter progress(log, options.terminal, e.train.epochs, bytes);
    const double base_lr = p.optimizer->learning_rate();
    const int64_t first_epoch = result.history.empty() ? 1 : result.history.back().epoch + 1;
    for (int64_t epoch = first_epoch; epoch <= e.train.epochs; ++epoch) {
        // Before the next epoch rather than after the last, so that a run resumed after
        // it stopped early stops again instead of training on.
        if (e.train.patience > 0 && epoch - 1 - best_epoch >= e.train.patience) {
            stopped_early = true;
            if (!quiet)
                log << "stopping early: " << to_string(best_by) << " has not improved for " << e.train.patience
                    << " epochs (best at epoch " << best_epoch << ")\n";
            break;
        }
        auto on_step = quiet ? std::function<void(const StepProgress&)>{}
                             : [&](const StepProgress& s) { progress.step(s); };
        const auto epoch_start = std::chrono::steady_clock::now();
        const int64_t steps = steps_per_epoch(e, p);
        const double lr = scheduled_rate(e, *p.schedule, base_lr, epoch, result.history, 1, steps);
        p.optimizer->set_learning_rate(lr);
        std::function<double(int64_t)> step_rate;
        if (e.per_step)
            step_rate = [&, epoch](int64_t step) {
                return scheduled_rate(e, *p.schedule, base_lr, epoch, result.history, step, steps);
            };
        EpochMetrics m = trainer->run_epoch(epoch, p.data.train, on_step, step_rate);
        m.learning_rate = lr;
        if (!m.diverged && p.validation.x.rows() > 0) m.validation = trainer->evaluate(p.validation);
        if (!m.diverged && p.data.test) m.test = trainer->evaluate(*p.data.test);
        m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
        result.history.push_back(m);
        if (!quiet) progress.epoch(m);
        if (options.on_epoch) options.on_epoch(m);
        if (writes) write_file_atomic(result.dir / "metrics.csv", metrics_csv(result.history));
        if (trainer->diagnosing()) {
            // Taken on every process, so the rows do not pile up where nothing writes them.
            step_rows += trainer->take_diagnostics();
            if (writes) write_file_atomic(result.dir / "steps.csv", trainer->diagnostics_header() + step_rows);
            else step_rows.clear();
        }
        if (writes && trainer->timeline()) write_file_atomic(result.dir / "timeline.csv", trainer->timeline()->csv());
        if (m.diverged) {
            result.diverged = true;
            break;
        }
        const bool better = best_score(best_by, m) < best;
        if (better) best = best_score(best_by, m), best_epoch = epoch;
        if (writes) save_checkpoints(e, *p.network, *p.optimizer, result, better);
        if (epoch == options.stop_after) break;
    }

    std::vector<const Matrix*> tensors;
    for (const auto& param : p.network->parameters()) {
        tensors.push_back(param.value);
        result.weights.push_back(*param.value);
    }
    result.fingerprint = fingerprint(tensors);
    result.threads_used = trainer->threads_used();
    result.bytes_per_step = trainer->bytes_per_step();

    RunSummary s;
    s.name = e.name;
    s.seed = e.seed;
    s.threads = trainer->threads();
    s.processes = options.cluster ? options.cluster->size() : 1;
    s.bytes_per_step = result.bytes_per_step;
    s.parameters = p.network->parameter_count();
    const bool stopped = options.stop_after > 0 && options.stop_after < e.train.epochs;
    s.status = result.diverged ? "diverged" : stopped_early ? "stopped early" : stopped ? "stopped" : "completed";
    s.history = result.history;
    s.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    s.weights_fingerprint = result.fingerprint;
    s.peak_rss_mib = peak_rss_mib();
    // Every process counts its shards of the test set, so all of them take part.
    if (!result.diverged && p.data.test && outputs_classes(*p.network, p.data.target))
        s.confusion = trainer->confusion(*p.data.test, p.data.target.classes);
    if (writes) write_file_atomic(result.dir / "summary.json", summary_json(s));
    if (!quiet && trainer->timeline())
        log << trainer->timeline()->summary() << "(every step's phases in " << (result.dir / "timeline.csv").string()
            << ")\n";
    return result;
}

TrainedModel load_trained(const fs::path& run_or_file, const std::vector<std::string>& overrides,
                          Registry& registry) {
    TrainedModel m;
    m.file = checkpoint_file(run_or_file);
    const Checkpoint c = load_checkpoint(m.file);
    for (const char* key : {"config", "experiment_dir", "format", "epoch", "history"})
        if (!c.metadata.count(key)) throw Error("checkpoint " + m.file.string() + " has no '" + key + "' in its metadata");
    // Relative paths in the config start at the original experiment's folder.
    m.experiment = parse_experiment(c.metadata.at("config"), fs::path(c.metadata.at("experiment_dir")) / "config.yaml",
                                    overrides, registry);
    m.run = prepare_run(m.experiment, registry, false);
    restore(c, m.file.string(), *m.run.network, *m.run.optimizer);
    m.epoch = int64_t(parse_history_json(nlohmann::json::parse(c.metadata.at("history"))).size());
    return m;
}

EvalResult evaluate_checkpoint(const fs::path& run_or_file, const std::vector<std::string>& overrides,
                               Registry& registry) {
    TrainedModel m = load_trained(run_or_file, overrides, registry);
    PreparedRun& p = m.run;
    if (!p.data.test) throw Error("the dataset has no test set to evaluate (set data.test_images or data.test_path)");
    EvalResult r;
    r.experiment = m.experiment;
    r.epoch = m.epoch;
    Trainer trainer(*p.network, p.loss, p.optimizer, r.experiment.train, r.experiment.seed, {});
    r.test = trainer.evaluate(*p.data.test);
    if (outputs_classes(*p.network, p.data.target)) r.confusion = trainer.confusion(*p.data.test, p.data.target.classes);
    return r;
}

}  // namespace bp
