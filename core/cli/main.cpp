// The `backplane` command: parses arguments, calls the core, prints one message
// and exits non-zero on any error.
#include "tools/certify.hpp"
#include "cluster/cluster.hpp"
#include "compare/compare.hpp"
#include "compare/suite.hpp"
#include "model/experiment.hpp"
#include "model/registry.hpp"
#include "train/generate.hpp"
#include "train/run.hpp"
#include "tools/scaffold.hpp"
#include "text/format.hpp"
#include "text/suggest.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <cstdio>
#include <filesystem>
#include <dlfcn.h>
#include <iostream>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

enum Exit { ok = 0, failed = 1, usage = 2, diverged = 3 };

// A flag that does not suit the file it came with (--quick without a suite, --jobs with
// one run): a bad command line, like the ones CLI11 refuses, found once the file is read.
struct UsageError : bp::Error {
    using bp::Error::Error;
};

std::string range_text(const bp::ParamSpec& s) {
    if (s.type == bp::ParamType::choice) return "{" + bp::join(s.choices, ", ") + "}";
    if (!s.min || !s.max) return "";
    return bp::range_text(*s.min, *s.max);
}

// A library on BACKPLANE_PLUGIN_PATH that did not load is named on stderr once the
// command is under way. A command that fails says it in its one error line instead,
// where it matters (an unknown component's message names the skipped libraries).
void warn_skipped(const bp::Registry& registry) {
    for (const auto& skipped : registry.skipped()) std::cerr << "backplane: warning: " << skipped << "\n";
}

void print_plugins(const bp::Registry& registry, const std::string& only_kind) {
    for (const bp::Kind kind : bp::kinds) {
        if (!only_kind.empty() && only_kind != bp::to_string(kind)) continue;
        for (const auto& [name, c] : registry.components(kind)) {
            const auto& m = *c.library->manifest;
            std::printf("%s %s\n    %s\n    from %s (%s %s)\n", bp::to_string(kind), name.c_str(), c.info->doc.c_str(),
                        c.library->path.c_str(), m.plugin.c_str(), m.version.c_str());
            for (const auto& s : c.info->schema.specs()) {
                std::printf("      %-16s %-10s %-12s %-22s %s\n", s.name.c_str(), bp::to_string(s.type),
                            bp::format_value(s.default_value).c_str(), range_text(s).c_str(), s.doc.c_str());
            }
        }
    }
}

void print_evaluation(const bp::EvalResult& r) {
    std::printf("%s after epoch %lld: test_loss %.4f", r.experiment.name.c_str(), static_cast<long long>(r.epoch),
                r.test.loss);
    if (r.confusion.size() == 0) {
        std::printf("\n");
        return;
    }
    std::printf(", test_accuracy %.4f\n\nclass  accuracy   predicted:", r.test.accuracy);
    for (Eigen::Index p = 0; p < r.confusion.cols(); ++p) std::printf(" %5lld", static_cast<long long>(p));
    std::printf("\n");
    for (Eigen::Index c = 0; c < r.confusion.rows(); ++c) {
        const int total = r.confusion.row(c).sum();
        std::printf("%5lld  %8.4f             ", static_cast<long long>(c), total ? double(r.confusion(c, c)) / total : 0.0);
        for (Eigen::Index p = 0; p < r.confusion.cols(); ++p) std::printf(" %5d", r.confusion(c, p));
        std::printf("\n");
    }
}

// Runs every check on every component `library` provides; prints one report each.
void check_plugin(bp::Registry& registry, const std::string& library, const bp::CertifyOptions& options) {
    registry.load_default_paths();   // the checks train with built-in components around the one checked
    const auto lib = registry.load_library(library);
    const auto& path = lib->path;
    const auto& m = *lib->manifest;
    const std::size_t n = m.components.size();
    if (n == 0) throw bp::Error(path.string() + " registers no components: nothing to check");
    // --set is for the library's datasets (what they need to load): any other is a mistake.
    std::vector<std::string> datasets;
    for (const auto& c : m.components)
        if (c.kind() == bp::Kind::dataset) datasets.push_back(c.name);
    for (const auto& set : options.sets) {
        const auto dot = set.find('.'), eq = set.find('=');
        if (dot == std::string::npos || eq == std::string::npos || dot > eq)
            throw bp::Error("--set " + set + ": give NAME.KEY=VALUE, e.g. --set csv.path=data.csv");
        const std::string name = set.substr(0, dot);
        if (datasets.empty())
            throw bp::Error("--set " + set + ": --set gives a dataset what it needs to load, and " + path.string() +
                            " has no dataset");
        if (std::find(datasets.begin(), datasets.end(), name) == datasets.end())
            throw bp::Error("--set " + set + ": '" + name + "' is not a dataset of " + path.string() + " (its datasets: " +
                            bp::join(datasets) + ")" + bp::did_you_mean(name, datasets));
    }
    std::printf("%s: %s %s, %zu component%s, checked at 1, 2 and %d threads\n\n", path.c_str(), m.plugin.c_str(),
                m.version.c_str(), n, n == 1 ? "" : "s", options.threads);
    std::vector<std::string> failed;
    for (const auto& c : m.components) {
        const bp::Certificate cert = bp::certify(registry, c.kind(), c.name, options);
        std::printf("%s%s", &c == &m.components.front() ? "" : "\n", cert.report().c_str());
        std::fflush(stdout);
        if (!cert.passed()) failed.push_back(std::string(bp::to_string(c.kind())) + " " + c.name);
    }
    if (!failed.empty()) {
        throw bp::Error(std::to_string(failed.size()) + " of " + std::to_string(m.components.size()) +
                        " components failed their checks: " + bp::join(failed));
    }
    if (n == 1) std::printf("\nthe component passed\n");
    else std::printf("\nall %zu components passed\n", n);
}

void new_plugin(const std::string& name, const std::string& kind_name, const std::filesystem::path& dir) {
    bp::Kind kind = bp::Kind::layer;
    for (const bp::Kind k : bp::scaffold_kinds)
        if (kind_name == bp::to_string(k)) kind = k;
    const auto prefix = bp::installed_prefix();
    bp::Registry builtins;
    builtins.load_default_paths();
    const auto files = bp::write_plugin_project(name, kind, dir, prefix, builtins);
    const bool vowel = std::string("aeiou").find(kind_name.front()) != std::string::npos;
    std::printf("wrote %s %s plugin project in %s:\n", vowel ? "an" : "a", kind_name.c_str(), dir.c_str());
    for (const auto& f : files) std::printf("  %s\n", f.filename().c_str());
    const std::string d = dir.string();
    std::printf("\nbuild it, check it, train with it:\n"
                "  cmake -S %s -B %s/build%s && cmake --build %s/build\n"
                "  backplane check-plugin %s/build/lib%s.so\n"
                "  backplane run %s/%s-example.yaml\n",
                d.c_str(), d.c_str(), prefix.empty() ? " -DCMAKE_PREFIX_PATH=<where Backplane is installed>" : "",
                d.c_str(), d.c_str(), name.c_str(), d.c_str(), name.c_str());
    if (prefix.empty())
        std::printf("\nThis backplane is not installed with its CMake package: install it first with\n"
                    "  cmake --install <Backplane's build folder> --prefix <prefix>\n");
}

// A comparison checked as `validate` checks an experiment: each variant's first run
// (a tuned variant's first trial) prepared, its data loaded and shapes checked.
void validate_comparison(const bp::Comparison& c, const bp::Registry& registry) {
    bp::check_tuning_data(c, registry);
    for (std::size_t v = 0; v < c.variants.size(); ++v) {
        if (!c.runs[v].empty()) bp::prepare_run(c.runs[v].front(), registry);
        for (const auto& tv : c.tuned)
            if (tv.variant == v) bp::prepare_run(tv.trials.front().run, registry);
    }
}

// The runs (trials too) that failed with an error, by name.
std::vector<std::string> failed_runs(const bp::ComparisonResult& r) {
    std::vector<std::string> failed;
    for (const auto& run : r.trials)
        if (!run.error.empty()) failed.push_back(run.variant + " trial " + std::to_string(run.trial));
    for (const auto& run : r.runs)
        if (!run.error.empty()) failed.push_back(run.variant + " seed " + std::to_string(run.seed));
    return failed;
}

// Said, not thrown: every process is past the comparison, none to abort.
int report_failures(const std::vector<std::string>& failed, std::size_t runs, const std::filesystem::path& errors) {
    if (failed.empty()) return ok;
    std::cerr << "backplane: error: " << failed.size() << " of " << runs << " runs failed (" << bp::join(failed)
              << "): the table leaves them out; their errors are in " << errors.string() << "\n";
    return Exit::failed;
}

// glibc's malloc asks the kernel for 2 MiB pages (transparent huge pages) only when told
// at start-up, through GLIBC_TUNABLES (glibc.malloc.hugetlb=1). Without them every
// buffer's first touch faults 4 KiB at a time, which is dear on a virtual machine: the
// ResNet's first training step took 702-966 ms against 64-78 ms for the others, 66-82 ms
// with them (docs/performance.md, "2 MiB pages"). So the command sets the tunable for
// itself and starts again, once. A GLIBC_TUNABLES that names glibc.malloc.hugetlb already
// is the user's choice (=0 keeps glibc's default) and is left alone. So is a process in
// glibc's secure mode (setuid, file capabilities), whose tunables glibc filters: the
// tunable would be gone after the restart, and the restart would repeat. And so is one
// started through the dynamic loader (ld.so PROGRAM), whose /proc/self/exe is the loader.
void use_huge_pages(char** argv) {
    const char* given = std::getenv("GLIBC_TUNABLES");
    const std::string tunables = given ? given : "";
    if (tunables.find("glibc.malloc.hugetlb") != std::string::npos || getauxval(AT_SECURE) != 0) return;
    Dl_info self{};
    struct stat program{}, exe{};
    if (dladdr(reinterpret_cast<void*>(&use_huge_pages), &self) == 0 || !self.dli_fname ||
        stat(self.dli_fname, &program) != 0 || stat("/proc/self/exe", &exe) != 0 ||
        program.st_dev != exe.st_dev || program.st_ino != exe.st_ino)
        return;
    const std::string with = (tunables.empty() ? "" : tunables + ":") + "glibc.malloc.hugetlb=1";
    if (setenv("GLIBC_TUNABLES", with.c_str(), 1) != 0) return;
    execv("/proc/self/exe", argv);
    if (given) setenv("GLIBC_TUNABLES", tunables.c_str(), 1);   // the exec failed: on as started
    else unsetenv("GLIBC_TUNABLES");
}

}  // namespace

int main(int argc, char** argv) {
    use_huge_pages(argv);
    // A file-size limit (ulimit -f) must fail a write with an error we report, not
    // kill the process with SIGXFSZ half-way through a run.
    std::signal(SIGXFSZ, SIG_IGN);
    CLI::App app{"Backplane: train neural networks described in YAML, with every component a plugin."};
    app.require_subcommand(1);
    app.footer("Exit status: 0 ok, 1 error (the message says what), 2 bad command line, 3 training diverged.\n"
               "Plugins load from the built-in folder, then $BACKPLANE_PLUGIN_PATH (colon-separated), then the\n"
               "experiment's 'plugins:' list. Under mpirun, 'run' trains over every process (docs/distributed.md).\n"
               "Run 'backplane COMMAND --help' for a command's options.");

    // One line, like every other error, pointing at the help of the command given.
    app.failure_message([](const CLI::App* a, const CLI::Error& e) {
        const auto given = a->get_subcommands();
        const std::string help = given.empty() ? "backplane --help" : "backplane " + given.front()->get_name() + " --help";
        return "backplane: error: " + std::string(e.what()) + " (see '" + help + "')\n";
    });

    std::string file, out, kind;
    std::vector<std::string> sets;
    bool quiet = false;

    auto* run = app.add_subcommand("run", "train an experiment; writes runs/<name>/<timestamp>/ (or --out)");
    run->add_option("file", file, "experiment, comparison or suite YAML file")->required();
    run->add_option("--set", sets, "override a key, e.g. --set train.epochs=3 (repeatable)")->allow_extra_args(false);
    auto* out_option = run->add_option("--out", out, "run folder to write instead of runs/<name>/<timestamp>");
    bool overwrite = false;
    run->add_flag("--overwrite", overwrite, "--out may hold results: replace them (without it, such a folder is refused)")
        ->needs(out_option);
    run->add_flag("-q,--quiet", quiet, "print nothing but errors");
    std::string resume;
    run->add_option("--resume", resume, "continue the run (or comparison, or suite) in this folder: a run from its last "
                                        "checkpoint; a comparison's finished runs are kept, a cut one continued")
        ->excludes(out_option);
    int jobs = 1;
    auto* jobs_option = run->add_option("--jobs", jobs, "comparisons: train this many runs at once (default 1)")
                            ->check(CLI::Range(1, 256));
    bool profile = false;
    auto* profile_flag = run->add_flag("--profile", profile, "one run: time every training step's phases (shards, "
                                                             "reduction, optimizer, idle threads) and every model entry; "
                                                             "prints a summary and writes timeline.csv");
    bool quick = false;
    auto* quick_flag = run->add_flag("--quick", quick, "suites: merge each quick: block over its keys (fewer seeds, "
                                                       "trials and epochs)");

    auto* validate = app.add_subcommand("validate", "check an experiment (plugins, schemas, data, shapes) without training");
    validate->add_option("file", file, "experiment, comparison or suite YAML file")->required();
    auto* validate_quick = validate->add_flag("--quick", quick, "suites: check the quick mode");
    validate->add_option("--set", sets, "override a key, e.g. --set train.epochs=3 (repeatable)")->allow_extra_args(false);

    std::string target;
    auto* eval = app.add_subcommand("eval", "evaluate a trained model on its test set: metrics, per-class accuracy, confusion matrix");
    eval->add_option("run", target, "a run folder (its checkpoints/last.safetensors) or a .safetensors checkpoint")->required();
    eval->add_option("--set", sets, "override a key of the saved config, e.g. --set data.test_limit=1000")
        ->allow_extra_args(false);

    bp::GenerateOptions gen;
    auto* generate = app.add_subcommand("generate", "sample text from a trained language model (a run of a text dataset)");
    generate->add_option("run", target, "a run folder (its checkpoints/last.safetensors) or a .safetensors checkpoint")
        ->required();
    generate->add_option("--prompt", gen.prompt, "the text to continue (default: a newline)");
    generate->add_option("--tokens", gen.tokens, "bytes to sample (default 400)")->check(CLI::Range(int64_t(0), int64_t(1) << 30));
    generate->add_option("--temperature", gen.temperature, "divides the logits: below 1 safer, above 1 wilder; "
                                                           "0 takes the most likely byte (default 1)")
        ->check(CLI::Range(0.0, 100.0));
    generate->add_option("--seed", gen.seed, "the same seed gives the same text (default 1)");
    generate->add_option("--set", gen.overrides, "override a key of the saved config, e.g. --set data.path=corpus.txt")
        ->allow_extra_args(false);

    auto* plugins = app.add_subcommand("plugins", "list every component with its parameters, defaults and docs");
    plugins->add_option("--kind", kind, "only this kind")->check(
        CLI::IsMember({"layer", "activation", "loss", "optimizer", "dataset", "schedule"}));

    std::string library;
    int check_threads = 4;
    auto* check = app.add_subcommand("check-plugin", "load a plugin library and run every check the built-ins pass "
                                                     "(schema, gradients, determinism, resume) on each of its components");
    check->add_option("library", library, "the plugin's .so file")->required();
    check->add_option("--threads", check_threads, "thread count compared with 1 and 2 in the determinism check (default 4)")
        ->check(CLI::Range(2, 256));
    std::vector<std::string> check_sets;
    check->add_option("--set", check_sets, "a parameter to check a component with, e.g. --set csv.path=data.csv "
                                           "(a dataset that needs a file to load) (repeatable)")->allow_extra_args(false);

    std::string new_name, new_kind, new_dir;
    auto* scaffold = app.add_subcommand("new-plugin", "write a standalone plugin project for a new component: "
                                                      "CMakeLists.txt, its source, an example experiment");
    scaffold->add_option("name", new_name, "the component's name, e.g. my_layer (also the library's)")->required();
    scaffold->add_option("--kind", new_kind, "what it is")->required()->check(
        CLI::IsMember({"layer", "activation", "loss", "optimizer"}));
    scaffold->add_option("--dir", new_dir, "the folder to write (default: ./NAME)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? ok : usage;
    }

    // Under mpirun, several processes: `run` trains over all of them; rank 0 prints.
    bp::Cluster* cluster = nullptr;
    struct Leave {
        ~Leave() { bp::Cluster::leave(); }
    } leave;
    Exit status = failed;   // what an error below exits with
    try {
        bp::Cluster& world = bp::Cluster::join();
        if (!world.alone()) cluster = &world;
        const bool speaks = !cluster || cluster->rank() == 0;
        if (cluster && !*run)
            cluster->agree([&] {
                throw bp::Error("'backplane " + app.get_subcommands().front()->get_name() + "' runs in one process; "
                                "start it without mpirun (only 'backplane run' trains over several)");
            });
        bp::Registry registry;
        if (*plugins) {
            registry.load_default_paths();
            print_plugins(registry, kind);
            warn_skipped(registry);
            return ok;
        }
        if (*scaffold) {
            new_plugin(new_name, new_kind, new_dir.empty() ? new_name : new_dir);
            return ok;
        }
        if (*check) {
            check_plugin(registry, library, {check_threads, check_sets});
            return ok;
        }
        if (*eval) {
            registry.load_default_paths();
            print_evaluation(bp::evaluate_checkpoint(target, sets, registry));
            warn_skipped(registry);
            return ok;
        }
        if (*generate) {
            registry.load_default_paths();
            char last = '\n';
            bp::generate(target, gen, registry, [&](std::string_view s) {
                std::cout << s << std::flush;
                if (!s.empty()) last = s.back();
            });
            if (last != '\n') std::cout << "\n";   // end the text's last line

            warn_skipped(registry);
            return ok;
        }
        bp::RunOptions options;
        options.out = out;
        options.overwrite = overwrite;
        options.resume = resume;
        options.quiet = quiet;
        options.profile = profile;
        options.terminal = ::isatty(STDOUT_FILENO);
        options.cluster = cluster;
        std::optional<bp::Suite> suite;
        std::optional<bp::Comparison> comparison;
        bp::Experiment e;
        auto load = [&] {
            registry.load_default_paths();
            suite = bp::load_suite(file, sets, quick, registry);
            if (!suite && quick_flag->count() + validate_quick->count() > 0)
                throw UsageError("--quick runs a suite's quick mode; " + file + " is not a suite (it has no workloads:)");
            if (!suite) comparison = bp::load_comparison(file, sets, registry);
            if (!suite && !comparison) e = bp::load_experiment(file, sets, registry);
            if (!suite && !comparison && jobs_option->count() > 0)
                throw UsageError("--jobs trains the runs of a comparison at once; " + file +
                                " is one run (use train.threads for its threads)");
            if ((suite || comparison) && profile_flag->count() > 0)
                throw UsageError("--profile times the steps of one run, alone on the machine; " + file +
                                " trains many: profile one of its experiments with 'backplane run EXPERIMENT --profile'");
        };
        if (cluster) cluster->agree(load);
        else load();
        if (speaks) warn_skipped(registry);
        if (suite) {
            if (*validate) {
                for (const auto& w : suite->workloads) validate_comparison(w.comparison, registry);
                std::cout << file << ": ok (" << suite->workloads.size() << " workloads x "
                          << suite->workloads[0].comparison.variants.size() << " variants)\n";
                return ok;
            }
            const auto result = bp::run_suite(*suite, registry, options, jobs, std::cout);
            std::vector<std::string> failed;
            std::size_t runs = 0;
            for (std::size_t w = 0; w < result.workloads.size(); ++w) {
                for (const auto& run : failed_runs(result.workloads[w])) failed.push_back(suite->workloads[w].name + ": " + run);
                runs += result.workloads[w].trials.size() + result.workloads[w].runs.size();
            }
            return report_failures(failed, runs, result.dir / "<workload>" / "comparison.json");
        }
        if (comparison) {
            if (*validate) {
                validate_comparison(*comparison, registry);
                std::cout << file << ": ok (" << comparison->variants.size() << " variants x "
                          << comparison->seeds.size() << " seeds)\n";
                return ok;
            }
            const auto result = bp::run_comparison(*comparison, registry, options, jobs, std::cout);
            return report_failures(failed_runs(result), result.trials.size() + result.runs.size(),
                                   result.dir / "comparison.json");
        }
        if (*validate) {
            const bp::PreparedRun p = bp::prepare_run(e, registry);
            std::cout << file << ": ok (" << p.data.train.x.rows() << " training samples, input "
                      << p.data.input.str() << ")\n"
                      << p.network->summary();
            return ok;
        }
        const bp::RunResult r = bp::run_experiment(e, registry, options, std::cout);
        if (r.diverged) {
            if (speaks)
                std::cerr << "backplane: training diverged (the loss became NaN or infinite) at epoch "
                          << r.history.back().epoch << "; try a smaller learning rate. Results so far are in "
                          << r.dir.string() << "\n";
            return diverged;
        }
        if (!quiet && speaks) std::cout << "results in " << r.dir.string() << "\n";
        return ok;
    } catch (const bp::PeerFailed&) {
        return failed;   // another process failed and said why
    } catch (const UsageError& e) {
        std::cerr << "backplane: error: " << e.what() << "\n";
        status = usage;
    } catch (const bp::Error& e) {
        std::cerr << "backplane: error: " << e.what() << "\n";
    } catch (const std::filesystem::filesystem_error& e) {
        // A path the system refuses (a loop of links, no permission, a name too long): the
        // user's to fix, not a bug.
        std::cerr << "backplane: error: " << e.path1().string() << ": " << e.code().message() << "\n";
    } catch (const std::exception& e) {
        std::cerr << "backplane: internal error: " << e.what() << " (please report it)\n";
    }
    // An error on one process while the others may wait for it in a step: end them all.
    if (cluster && !cluster->failed_together()) bp::Cluster::abort(status);
    return status;
}
