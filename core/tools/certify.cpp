#include "tools/certify.hpp"

#include "tools/isolation_check.hpp"

#include "model/network.hpp"
#include "train/run.hpp"
#include "text/suggest.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>

namespace bp {

namespace fs = std::filesystem;

namespace {

// The prediction/target pairings a loss is tried on; its own check() picks which it takes.
const std::vector<std::pair<Shape, TargetInfo>> loss_pairings = {
    {Shape{3}, {1, 3}}, {Shape{2}, {1, 2}}, {Shape{1}, {1, 2}}, {Shape{4}, {4, 0}}, {Shape{1}, {1, 0}},
};

std::vector<std::pair<Shape, TargetInfo>> accepted_pairings(const Loss& loss) {
    std::vector<std::pair<Shape, TargetInfo>> out;
    for (const auto& p : loss_pairings) {
        try {
            loss.check(p.first, p.second);
            out.push_back(p);
        } catch (const Error&) {
        }
    }
    return out;
}

// A fresh folder for the check's runs, removed with everything in it.
class ScratchDir {
public:
    ScratchDir() {
        std::string tmpl = (fs::temp_directory_path() / "backplane-check-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw Error("cannot create a temporary folder in " + fs::temp_directory_path().string());
        path_ = tmpl;
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

std::string yaml_value(const Value& v) {
    if (const auto* s = std::get_if<std::string>(&v)) {
        std::string quoted = "\"";
        for (char c : *s) quoted += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
        return quoted + "\"";
    }
    return format_value(v);
}

std::string yaml_params(const std::map<std::string, Value>& params) {
    std::string out = "{";
    for (const auto& [k, v] : params) out += (out.size() > 1 ? ", " : "") + k + ": " + yaml_value(v);
    return out + "}";
}

std::string shape_text(const Shape& s) {
    std::string out;
    for (auto d : s.dims) out += (out.empty() ? "" : "x") + std::to_string(d);
    return out;
}

// A small experiment on the gaussian dataset that exercises one component. Its pieces
// are built-in components; `model` (every layer but the output), `loss` and
// `optimizer` are YAML fragments.
struct Recipe {
    std::string data = "{ source: gaussian, shape: \"8\", samples: 96, classes: 3, validation_split: 0.25 }";
    // With the output, six dense layers, 12 parameter tensors: an optimizer's state must
    // come back in the order it was saved past ten names ("velocity.10" sorts before
    // "velocity.2").
    std::string model = "  - dense: { units: 8 }\n  - tanh\n  - dense: { units: 8 }\n  - tanh\n  - dense: { units: 8 }\n"
                        "  - tanh\n  - dense: { units: 8 }\n  - tanh\n  - dense: { units: 8 }\n  - tanh\n";
    int64_t outputs = 3;
    std::string loss = "softmax_cross_entropy";
    std::string optimizer = "{ name: adam, lr: 0.01 }";

    // `busy`: two wide layers before the output, so that each shard outlasts a worker
    // thread's wake-up (with the small model, a 4-thread run finished on one thread).
    std::string text(bool busy = false) const {
        const std::string wide = busy ? "  - dense: { units: 384 }\n  - tanh\n  - dense: { units: 384 }\n  - tanh\n" : "";
        return "name: check\nseed: 7\ndata: " + data + "\nmodel:\n" + model + wide + "  - dense: { units: " +
               std::to_string(outputs) + " }\nloss: " + loss + "\noptimizer: " + optimizer +
               "\ntrain: { epochs: 4, batch_size: 32, shard_size: 8, checkpoint_every: 2 }\n";
    }
};

// The recipe that trains component `name` of `kind`, or nothing when the kind has none.
std::optional<Recipe> recipe_for(const Registry& registry, Kind kind, const std::string& name) {
    const ComponentInfo& info = *registry.get(kind, name).info;
    Recipe r;
    switch (kind) {
        case Kind::layer: {
            const CheckCase& c = info.checks.front();   // check_manifest: there is one
            r.data = "{ source: gaussian, shape: \"" + shape_text(c.input) + "\", integers: " + std::to_string(c.indices) +
                     ", samples: 96, classes: 3, validation_split: 0.25 }";
            if (c.more_inputs.empty()) {
                r.model = "  - " + name + ": " + yaml_params(c.params) + "\n  - flatten\n";
                return r;
            }
            // A merge layer reads branches that learn: each a batch_norm of the data, so
            // every input is of the first's shape (the gradient checks cover the rest).
            std::string branches;
            r.model.clear();
            for (std::size_t k = 0; k <= c.more_inputs.size(); ++k) {
                const std::string branch = "branch" + std::to_string(k + 1);
                r.model += "  - { batch_norm: {}, name: " + branch + ", inputs: [input] }\n";
                branches += (k ? ", " : "") + branch;
            }
            r.model += "  - { " + name + ": " + yaml_params(c.params) + ", inputs: [" + branches + "] }\n  - flatten\n";
            return r;
        }
        case Kind::activation:
            // Fused, so a layer of the same name cannot stand in for it.
            r.model = "  - dense: { units: 8, activation: " + name + " }\n";
            return r;
        case Kind::loss: {
            const auto pairings = accepted_pairings(*registry.create<Loss>(name, Params::defaults(info.schema)));
            if (pairings.empty()) return std::nullopt;
            const auto& [pred, targets] = pairings.front();
            r.data = "{ source: gaussian, shape: \"8\", samples: 96, classes: " + std::to_string(targets.classes) +
                     ", outputs: " + std::to_string(targets.columns) + ", validation_split: 0.25 }";
            r.model = "  - dense: { units: 8 }\n  - tanh\n";
            r.outputs = pred.size();
            r.loss = name;
            return r;
        }
        case Kind::optimizer:
            r.optimizer = "{ name: " + name + " }";
            return r;
        case Kind::schedule:
            r.optimizer = "{ name: adam, lr: 0.01, schedule: { name: " + name + " } }";
            return r;
        case Kind::dataset:
            return std::nullopt;
    }
    return std::nullopt;
}

RunResult train(Registry& registry, const Recipe& recipe, const fs::path& dir, const std::vector<std::string>& sets,
                const fs::path& resume = {}, int64_t stop_after = 0, bool busy = false) {
    fs::create_directories(dir);
    Experiment e;
    const std::string text = recipe.text(busy);
    try {
        e = parse_experiment(text, dir / "check.yaml", sets, registry);
    } catch (const Error& err) {
        throw Error(std::string("check-plugin's experiment for it is refused: ") + err.what() + "\n" + text);
    }
    RunOptions options;
    options.out = dir / "run";
    options.resume = resume;
    options.quiet = true;
    options.stop_after = stop_after;
    std::ostringstream log;
    RunResult r;
    try {
        r = run_experiment(e, registry, options, log);
    } catch (const Error& err) {
        throw Error(std::string("training with it failed: ") + err.what() + "\n(check-plugin's experiment:\n" + text +
                    ")");
    }
    if (r.diverged) throw Error("training diverged (a NaN or infinite loss) at epoch " + std::to_string(r.history.size()));
    return r;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// "" when the two runs are bitwise the same, else what differs first.
std::string difference(const RunResult& a, const RunResult& b) {
    if (a.history.size() != b.history.size()) return "they ran different numbers of epochs";
    for (std::size_t i = 0; i < a.history.size(); ++i) {
        for (const Metric m : all_metrics) {
            const double x = a.history[i].get(m), y = b.history[i].get(m);
            if (same_bits(x, y)) continue;
            char buf[160];
            std::snprintf(buf, sizeof buf, "%s of epoch %zu differs: %.9g vs %.9g", to_string(m), i + 1, x, y);
            return buf;
        }
    }
    if (a.fingerprint != b.fingerprint) return "the final weights differ";
    return "";
}

// The component's defaults, with what `sets` ("name.key=value") says of it, each value
// checked against the schema. `given`: whether any applied.
Params component_params(Registry& registry, Kind kind, const std::string& name, const std::vector<std::string>& sets,
                        bool& given) {
    const Schema& schema = registry.get(kind, name).info->schema;
    Params params = Params::defaults(schema);
    given = false;
    for (const auto& set : sets) {
        const auto dot = set.find('.'), eq = set.find('=');
        if (dot == std::string::npos || eq == std::string::npos || dot > eq || set.substr(0, dot) != name) continue;
        const std::string key = set.substr(dot + 1, eq - dot - 1);
        const ParamSpec* spec = schema.find(key);
        std::vector<std::string> keys;
        for (const auto& s : schema.specs()) keys.push_back(s.name);
        if (!spec) throw Error("--set " + set + ": " + name + " has no parameter '" + key + "'" + did_you_mean(key, keys));
        YamlReader reader(fs::path(), registry);
        const YAML::Node value = reader.override_value(set);
        params.set(key, reader.value(*spec, value, name + "." + key));
        given = true;
    }
    return params;
}

CheckOutcome check_schema(const Registry& registry, Kind kind, const std::string& name) {
    const ComponentInfo& info = *registry.get(kind, name).info;
    std::vector<std::string> problems;
    if (info.doc.empty()) problems.push_back("the component has no doc line");
    for (const auto& s : info.schema.specs()) {
        const std::string p = "parameter '" + s.name + "' ";
        if (s.doc.empty()) problems.push_back(p + "has no doc line");
        if (s.type == ParamType::integer || s.type == ParamType::number) {
            const double d = s.type == ParamType::integer ? double(std::get<int64_t>(s.default_value))
                                                          : std::get<double>(s.default_value);
            if (!std::isfinite(d) || (s.min && d < *s.min) || (s.max && d > *s.max))
                problems.push_back(p + "has its default " + format_value(s.default_value) + " outside its range");
        }
        if (s.type == ParamType::choice &&
            std::find(s.choices.begin(), s.choices.end(), std::get<std::string>(s.default_value)) == s.choices.end())
            problems.push_back(p + "has its default " + format_value(s.default_value) + " outside its choices");
        if (s.type == ParamType::activation && !registry.find(Kind::activation, std::get<std::string>(s.default_value)))
            problems.push_back(p + "defaults to the unknown activation " + format_value(s.default_value));
    }
    if (problems.empty()) {
        // Made with its defaults (a factory that throws is reported by the registry). A
        // dataset may rightly need a file named first: the data check tries it.
        const Params defaults = Params::defaults(info.schema);
        switch (kind) {
            case Kind::layer: registry.create<Layer>(name, defaults); break;
            case Kind::activation: registry.create<Activation>(name, defaults); break;
            case Kind::loss: registry.create<Loss>(name, defaults); break;
            case Kind::optimizer: registry.create<Optimizer>(name, defaults); break;
            case Kind::dataset: break;
            case Kind::schedule: registry.create<Schedule>(name, defaults); break;
        }
        const std::size_t n = info.schema.specs().size();
        return {"schema", true,
                n == 0 ? "documented, no parameters"
                       : std::to_string(n) + " parameter" + (n == 1 ? "" : "s") + ", each documented, defaults in range"};
    }
    return {"schema", false, join(problems, "; ")};
}

CheckOutcome check_gradients(const Registry& registry, Kind kind, const std::string& name) {
    const auto results = gradient_checks(registry, kind, name);
    if (results.empty()) return {"gradients", false, "no configuration to check (a loss that accepts no output shape?)"};
    int64_t points = 0;
    double worst = 0;
    for (const auto& r : results) {
        if (!r.passed()) return {"gradients", false, r.report()};
        if (r.checked == 0) return {"gradients", false, r.subject + ": nothing to check"};
        points += r.checked;
        worst = std::max(worst, r.worst);
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "%zu configurations, %lld points, worst error %.2f of the tolerance", results.size(),
                  static_cast<long long>(points), worst);
    return {"gradients", true, buf};
}

// Enough steps and shards for every thread to take part (Recipe::text).
const std::vector<std::string> busy = {"data.samples=1536", "train.batch_size=64"};

CheckOutcome check_determinism(Registry& registry, const Recipe& recipe, const fs::path& dir, int threads) {
    auto at = [&](int t) {
        std::vector<std::string> sets = busy;
        sets.push_back("train.threads=" + std::to_string(t));
        return train(registry, recipe, dir / ("threads-" + std::to_string(t)), sets, {}, 0, true);
    };
    const RunResult one = at(1);
    std::string report;
    for (int t : {2, threads}) {
        const RunResult many = at(t);
        const std::string runs = "1 and " + std::to_string(t) + " threads";
        if (const std::string diff = difference(one, many); !diff.empty()) return {"determinism", false, runs + ": " + diff};
        if (many.threads_used < 2)
            return {"determinism", false, runs + ": only one thread did work at " + std::to_string(t) +
                                              ", so the runs prove nothing (is the machine busy?)"};
        report += (report.empty() ? "" : ", ") + std::to_string(many.threads_used) + " of " + std::to_string(t);
    }
    return {"determinism", true, "1, 2 and " + std::to_string(threads) + " threads (" + report +
                                     " did work): identical weights and losses"};
}

// At one thread, so that a failure here is about the checkpoint, never a race.
CheckOutcome check_resume(Registry& registry, const Recipe& recipe, const fs::path& dir) {
    const std::vector<std::string> sets = {"train.threads=1"};
    const RunResult straight = train(registry, recipe, dir / "straight", sets);
    train(registry, recipe, dir / "broken", sets, {}, 2);
    const RunResult resumed = train(registry, recipe, dir / "broken", sets, dir / "broken" / "run");
    const std::string diff = difference(straight, resumed);
    if (!diff.empty()) return {"resume", false, "4 epochs straight vs 2 + resume + 2: " + diff};
    return {"resume", true, "4 epochs straight = 2 + checkpoint + resume + 2, bitwise"};
}

CheckOutcome check_rows(const Registry& registry, const std::string& name) {
    for (const auto& params : parameter_variants(registry.get(Kind::loss, name).info->schema, registry)) {
        const auto loss = registry.create<Loss>(name, params);
        for (const auto& [pred, targets] : accepted_pairings(*loss))
            if (const std::string problem = rows_problem(*loss, pred, targets, 1); !problem.empty())
                return {"rows", false, describe(params) + " pred " + pred.str() + ": " + problem};
    }
    return {"rows", true, "a batch's loss is the sum of its rows', each row's gradient its own"};
}

CheckOutcome check_isolation(const Registry& registry, Kind kind, const std::string& name) {
    const ComponentInfo& info = *registry.get(kind, name).info;
    int cases = 0;
    for (const auto& check : info.checks) {
        Params params = Params::defaults(info.schema);
        for (const auto& [key, value] : check.params) params.set(key, value);
        for (const bool training : {true, false}) {
            auto layer = make_layer(ComponentConfig{kind, name, params, "check"}, registry);
            const std::vector<Shape> inputs = inputs_of(check);
            if (const std::string problem = isolation_problem(*layer, inputs, 1, training, check.indices);
                !problem.empty())
                return {"isolation", false, describe(params) + " on " + shapes_text(inputs) +
                                                (training ? "" : " (evaluation)") + ": " + problem};
            ++cases;
        }
    }
    return {"isolation", true, std::to_string(cases) + " configurations: shards interleaved and at once on three "
                                                       "threads each get their own bits"};
}

CheckOutcome check_rates(const Registry& registry, const std::string& name) {
    const auto schedule = registry.create<Schedule>(name, Params::defaults(registry.get(Kind::schedule, name).info->schema));
    for (int64_t epochs : {1, 7, 100})
        for (int64_t e = 1; e <= epochs; ++e) {
            // A history of steadily improving results, as a schedule that watches them may need.
            std::vector<EpochMetrics> history;
            for (int64_t k = 1; k < e; ++k) {
                const double loss = 1.0 / double(k), accuracy = 1.0 - loss / 2;
                EpochMetrics m;
                m.epoch = k;
                m.learning_rate = 0.1;
                m.train = m.validation = m.test = {loss, accuracy};
                history.push_back(m);
            }
            const double lr = schedule->learning_rate(0.1, e, epochs, history);
            if (!std::isfinite(lr) || lr < 0)
                return {"rates", false,
                        "epoch " + std::to_string(e) + " of " + std::to_string(epochs) + " gets rate " + format_value(lr)};
        }
    return {"rates", true, "finite and not negative over 1, 7 and 100 epochs"};
}

CheckOutcome check_data(const Registry& registry, const std::string& name, const Params& params, bool given) {
    std::shared_ptr<Dataset> dataset;
    Data a, b;
    try {
        dataset = registry.create<Dataset>(name, params);
        a = dataset->load({1, fs::current_path().string()});
    } catch (const Error& e) {
        return {"data", false,
                std::string(given ? "does not load with the parameters given: " : "does not load with its defaults: ") +
                    e.what() + (given ? "" : "; check it on data of yours: check-plugin LIBRARY --set " + name +
                                                 ".KEY=VALUE (e.g. a file to read)")};
    }
    b = dataset->load({1, fs::current_path().string()});
    auto consistent = [&](const Split& s, const char* which) -> std::string {
        if (s.x.cols() != a.input.size()) return std::string(which) + " rows are not input-sized";
        if (s.y.rows() != s.x.rows() || s.y.cols() != a.target.columns) return std::string(which) + " targets do not match";
        if (!s.x.allFinite() || !s.y.allFinite()) return std::string(which) + " holds NaN or infinite values";
        return "";
    };
    std::string problem = consistent(a.train, "training");
    if (problem.empty() && a.test) problem = consistent(*a.test, "test");
    auto same = [](const Matrix& x, const Matrix& y) {
        return x.rows() == y.rows() && x.cols() == y.cols() && x == y;
    };
    if (problem.empty() && (!same(a.train.x, b.train.x) || !same(a.train.y, b.train.y))) problem = "two loads differ";
    if (!problem.empty()) return {"data", false, problem};
    return {"data", true,
            std::to_string(a.train.x.rows()) + " training samples of " + a.input.str() + ", loaded twice the same"};
}

}  // namespace

std::vector<GradientCheckResult> gradient_checks(const Registry& registry, Kind kind, const std::string& name) {
    const ComponentInfo& info = *registry.get(kind, name).info;
    std::vector<GradientCheckResult> out;
    if (kind == Kind::layer || kind == Kind::activation) {
        for (const auto& check : info.checks) {
            for (auto params : parameter_variants(info.schema, registry)) {
                for (const auto& [key, value] : check.params) params.set(key, value);
                for (const auto& [seed, training] : {std::pair{1, true}, {2, true}, {3, false}}) {
                    auto layer = make_layer(ComponentConfig{kind, name, params, "check"}, registry);
                    const std::vector<Shape> inputs = inputs_of(check);
                    GradientCheckOptions options;
                    options.indices = check.indices;
                    auto r = check_layer(*layer, inputs, uint64_t(seed), training, options);
                    r.subject = std::string(to_string(kind)) + " " + name + " " + describe(params) + " on " +
                                shapes_text(inputs) + " seed " + std::to_string(seed) + (training ? "" : " (evaluation)");
                    out.push_back(std::move(r));
                }
            }
        }
    } else if (kind == Kind::loss) {
        for (const auto& params : parameter_variants(info.schema, registry)) {
            const auto loss = registry.create<Loss>(name, params);
            for (const auto& [pred, targets] : accepted_pairings(*loss)) {
                for (uint64_t seed : {1, 2, 3}) {
                    auto r = check_loss(*loss, pred, targets, seed);
                    r.subject = "loss " + name + " " + describe(params) + " pred " + pred.str() + " classes " +
                                std::to_string(targets.classes) + " seed " + std::to_string(seed);
                    out.push_back(std::move(r));
                }
            }
        }
    }
    return out;
}

Certificate certify(Registry& registry, Kind kind, const std::string& name, const CertifyOptions& o) {
    Certificate c{kind, name, {}};
    // Each check runs on its own: one that throws is a failure, and the rest still run.
    auto run = [&](const char* check, auto&& f) {
        try {
            c.checks.push_back(f());
        } catch (const std::exception& e) {
            c.checks.push_back({check, false, e.what()});
        }
    };
    run("schema", [&] { return check_schema(registry, kind, name); });
    if (kind == Kind::layer || kind == Kind::activation || kind == Kind::loss)
        run("gradients", [&] { return check_gradients(registry, kind, name); });
    if (kind == Kind::loss) run("rows", [&] { return check_rows(registry, name); });
    if (kind == Kind::layer || kind == Kind::activation)
        run("isolation", [&] { return check_isolation(registry, kind, name); });
    if (kind == Kind::schedule) run("rates", [&] { return check_rates(registry, name); });
    if (kind == Kind::dataset)
        run("data", [&] {
            bool given = false;
            const Params params = component_params(registry, kind, name, o.sets, given);
            return check_data(registry, name, params, given);
        });
    if (!c.passed()) return c;   // training with a component that failed the above tells nothing new

    const std::optional<Recipe> recipe = recipe_for(registry, kind, name);
    if (!recipe) return c;
    run("determinism", [&] {
        const ScratchDir dir;
        return check_determinism(registry, *recipe, dir.path(), o.threads);
    });
    if (kind == Kind::layer || kind == Kind::optimizer || kind == Kind::schedule) {
        run("resume", [&] {
            const ScratchDir dir;
            return check_resume(registry, *recipe, dir.path());
        });
    }
    return c;
}

bool Certificate::passed() const {
    for (const auto& check : checks)
        if (!check.passed) return false;
    return true;
}

std::string Certificate::report() const {
    std::string out = std::string(to_string(kind)) + " " + name + "\n";
    for (const auto& check : checks) {
        char head[40];
        std::snprintf(head, sizeof head, "  %-5s %-12s ", check.passed ? "ok" : "FAIL",
                      check.check.c_str());
        std::string detail = check.detail;
        const std::string indent(std::strlen(head), ' ');
        for (std::size_t p = 0; (p = detail.find('\n', p)) != std::string::npos; p += indent.size() + 1)
            detail.replace(p, 1, "\n" + indent);
        out += head + detail + "\n";
    }
    return out;
}

}  // namespace bp
