#include "run.hpp"

#include "progress.hpp"
#include "run_files.hpp"

#include <chrono>
#include <cmath>
#include <ostream>

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
        if (d.target.classes > 0 && s.y.size() > 0 &&
            (s.y.minCoeff() < 0 || s.y.maxCoeff() >= float(d.target.classes)))
            fail(std::string(which) + " has labels outside 0.." + std::to_string(d.target.classes - 1));
    };
    if (d.train.x.rows() == 0) fail("the training set is empty");
    check_split(d.train, "the training set");
    if (d.test) check_split(*d.test, "the test set");
}

}  // namespace

PreparedRun prepare_run(const Experiment& e, const Registry& registry) {
    PreparedRun p;
    try {
        auto dataset = registry.create<Dataset>(e.data.name, e.data.params);
        p.data = dataset->load({e.seed, e.file.parent_path().string()});
    } catch (const Error& err) {
        throw Error(e.data.where + ": " + err.what());
    }
    check_data(p.data, e.data.where, e.data.name);
    p.validation = split_validation(p.data.train, e.validation_split, e.seed);
    if (p.data.train.x.rows() == 0) throw Error(e.data.where + ": validation_split leaves no training samples");

    p.network = std::make_unique<Network>(e.model, p.data.input, e.seed, registry);
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
    } catch (const Error& err) {
        throw Error(e.optimizer.where + ": " + err.what());
    }
    return p;
}

RunResult run_experiment(const Experiment& e, const Registry& registry, const RunOptions& options,
                         std::ostream& log) {
    const auto start = std::chrono::steady_clock::now();
    PreparedRun p = prepare_run(e, registry);
    Trainer trainer(*p.network, p.loss, p.optimizer, e.train, e.seed);

    RunResult result;
    if (options.out.empty()) {
        result.dir = new_run_dir(options.runs_root, e.name);
    } else {
        result.dir = options.out;
        std::error_code ec;
        fs::create_directories(result.dir, ec);
        if (ec) throw Error("cannot create the run folder " + result.dir.string() + ": " + ec.message());
    }
    write_file_atomic(result.dir / "config.yaml", to_yaml(e));

    if (!options.quiet) {
        log << "experiment " << e.name << ": " << p.data.train.x.rows() << " training samples";
        if (p.validation.x.rows()) log << ", " << p.validation.x.rows() << " validation";
        if (p.data.test) log << ", " << p.data.test->x.rows() << " test";
        log << ", " << trainer.threads() << " thread(s)\n" << p.network->summary() << std::flush;
    }
    ProgressPrinter progress(log, options.terminal, e.train.epochs);
    for (int64_t epoch = 1; epoch <= e.train.epochs; ++epoch) {
        auto on_step = options.quiet ? std::function<void(const StepProgress&)>{}
                                     : [&](const StepProgress& s) { progress.step(s); };
        const auto epoch_start = std::chrono::steady_clock::now();
        EpochMetrics m = trainer.run_epoch(epoch, p.data.train, on_step);
        if (!m.diverged && p.validation.x.rows() > 0) m.validation = trainer.evaluate(p.validation);
        if (!m.diverged && p.data.test) m.test = trainer.evaluate(*p.data.test);
        m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
        result.history.push_back(m);
        if (!options.quiet) progress.epoch(m);
        write_file_atomic(result.dir / "metrics.csv", metrics_csv(result.history));
        if (m.diverged) {
            result.diverged = true;
            break;
        }
    }

    std::vector<const Matrix*> tensors;
    for (const auto& param : p.network->parameters()) {
        tensors.push_back(param.value);
        result.weights.push_back(*param.value);
    }
    result.fingerprint = fingerprint(tensors);

    RunSummary s;
    s.name = e.name;
    s.seed = e.seed;
    s.threads = trainer.threads();
    s.parameters = p.network->parameter_count();
    s.status = result.diverged ? "diverged" : "completed";
    s.history = result.history;
    s.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    s.weights_fingerprint = result.fingerprint;
    write_file_atomic(result.dir / "summary.json", summary_json(s));
    return result;
}

}  // namespace bp
