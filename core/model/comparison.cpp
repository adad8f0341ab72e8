#include "model/comparison.hpp"

#include "text/format.hpp"
#include "text/suggest.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace fs = std::filesystem;

namespace bp {

namespace {

constexpr std::size_t max_runs = 10000;

// Every map under `n` that `is` accepts (not looking inside those), with its dotted
// key path, in the file's order.
void find_all(const YAML::Node& n, const std::string& path, bool (*is)(const YAML::Node&),
              std::vector<std::pair<std::string, YAML::Node>>& found) {
    if (!n.IsMap()) return;
    if (is(n)) {
        found.emplace_back(path, n);
        return;
    }
    for (const auto& kv : n) find_all(kv.second, path.empty() ? kv.first.Scalar() : path + "." + kv.first.Scalar(), is, found);
}

bool is_sweep(const YAML::Node& n) { return bool(n["sweep"]); }

bool is_search(const YAML::Node& n) {
    return n.size() == 1 && (n["uniform"] || n["log_uniform"] || n["choice"]);
}

// A one-key map of a list whose key is a search space's, misspelt ({ log_unifrom: [...] }).
bool is_misspelt_search(const YAML::Node& n) {
    if (n.size() != 1 || is_search(n)) return false;
    const auto entry = *n.begin();
    return entry.first.IsScalar() && entry.second.IsSequence() &&
           !did_you_mean(entry.first.Scalar(), {"uniform", "log_uniform", "choice"}).empty();
}

// The node at a dotted path found by find_all.
YAML::Node at_path(YAML::Node n, const std::string& path) {
    for (std::size_t start = 0; start <= path.size();) {
        const std::size_t dot = std::min(path.find('.', start), path.size());
        n.reset(n[path.substr(start, dot - start)]);
        start = dot + 1;
    }
    return n;
}

// { uniform: [low, high] }, { log_uniform: [low, high] } or { choice: [a, b, ...] }.
SearchDimension read_dimension(const YamlReader& r, const std::string& key, const YAML::Node& n) {
    SearchDimension d;
    d.key = key;
    const auto entry = *n.begin();
    const std::string name = entry.first.Scalar();
    const YAML::Node list = entry.second;
    if (name == "choice") {
        d.kind = SearchDimension::Kind::choice;
        if (!list.IsSequence() || list.size() < 2)
            r.fail(list, key + ": choice needs a list of two or more values, e.g. { choice: [0.99, 0.999] }");
        for (const auto& v : list) {
            if (!v.IsScalar()) r.fail(v, key + ": each choice is one value (a number, a word, true or false)");
            d.choices.push_back(v.Scalar());
        }
        return d;
    }
    d.kind = name == "uniform" ? SearchDimension::Kind::uniform : SearchDimension::Kind::log_uniform;
    if (!list.IsSequence() || list.size() != 2)
        r.fail(list, key + ": " + name + " needs [low, high], e.g. { " + name + ": [1e-4, 1] }");
    d.low = r.real(list[0], key + "." + name + " low");
    d.high = r.real(list[1], key + "." + name + " high");
    if (!(d.low < d.high)) r.fail(list, key + ": " + name + " needs low < high");
    if (name == "log_uniform" && d.low <= 0) r.fail(list, key + ": log_uniform needs low above 0");
    return d;
}

std::optional<Tuning> read_tuning(const YamlReader& r, const YAML::Node& n) {
    if (!n) return std::nullopt;
    if (!n.IsMap())
        r.fail(n, "compare.tuning must be a mapping, e.g. { trials: 16, method: quasi_random, metric: val_accuracy }");
    r.check_keys(n, {"trials", "method", "seed", "metric", "budget"}, "compare.tuning");
    Tuning t;
    t.where = r.where(n);
    t.trials = r.integer(r.require(n, "trials", "compare.tuning"), "compare.tuning.trials", 1, 1000);
    if (const YAML::Node m = n["method"]) {
        const std::string method = r.scalar(m, "compare.tuning.method");
        const std::vector<std::string> methods = {"quasi_random", "random", "grid"};
        if (method == "quasi_random") t.method = SearchMethod::quasi_random;
        else if (method == "random") t.method = SearchMethod::random;
        else if (method == "grid") t.method = SearchMethod::grid;
        else r.fail(m, "compare.tuning.method '" + method + "' is not one of " + join(methods) + did_you_mean(method, methods));
    }
    if (n["seed"]) t.seed = uint64_t(r.integer(n["seed"], "compare.tuning.seed", 0, double(INT64_MAX)));
    if (const YAML::Node m = n["metric"]) {
        const std::string name = r.scalar(m, "compare.tuning.metric");
        if (name != "val_accuracy" && name != "val_loss")
            r.fail(m, "compare.tuning.metric must be val_accuracy or val_loss, not " + name +
                          (metric_named(name) ? ": trials are chosen on validation data, never on the test set or the training loss"
                                              : did_you_mean(name, {"val_accuracy", "val_loss"})));
        t.metric = *metric_named(name);
    }
    if (n["budget"]) t.budget = r.integer(n["budget"], "compare.tuning.budget (epochs per trial)", 1, 1e6);
    return t;
}

// Each swept value as a variant's name shows it: 4 significant digits, more where two
// values would otherwise read the same.
std::vector<std::string> value_labels(const std::vector<double>& values) {
    std::vector<std::string> labels;
    for (int digits = 4; digits <= 17; ++digits) {
        labels.clear();
        for (double v : values) {
            char buf[40];
            std::snprintf(buf, sizeof buf, "%.*g", digits, v);
            labels.push_back(buf);
        }
        std::vector<std::string> sorted = labels;
        std::sort(sorted.begin(), sorted.end());
        if (std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end()) break;
    }
    return labels;
}

// {sweep: log|linear, from, to, points}: the values, from first to last.
std::vector<double> sweep_values(const YamlReader& r, const YAML::Node& n, bool& log) {
    r.check_keys(n, {"sweep", "from", "to", "points"}, "a sweep");
    const std::string kind = r.scalar(n["sweep"], "sweep");
    if (kind != "log" && kind != "linear") r.fail(n["sweep"], "sweep must be log or linear, got " + kind);
    log = kind == "log";
    const double from = r.real(r.require(n, "from", "a sweep"), "sweep.from");
    const double to = r.real(r.require(n, "to", "a sweep"), "sweep.to");
    const int64_t points = r.integer(r.require(n, "points", "a sweep"), "sweep.points", 2, 1000);
    if (log && (from <= 0 || to <= 0)) r.fail(n, "a log sweep needs from and to above 0");
    std::vector<double> out;
    for (int64_t i = 0; i < points; ++i) {
        const double t = double(i) / double(points - 1);
        out.push_back(i == points - 1 ? to : log ? from * std::pow(to / from, t) : from + (to - from) * t);
    }
    return out;
}

std::vector<uint64_t> read_seeds(const YamlReader& r, const YAML::Node& compare, const YAML::Node& root) {
    std::vector<uint64_t> seeds;
    if (const YAML::Node list = compare["seeds"]) {
        if (!list.IsSequence() || list.size() == 0) r.fail(list, "compare.seeds must be a list of integers");
        for (const auto& s : list) {
            const auto seed = uint64_t(r.integer(s, "compare.seeds entry", 0, double(INT64_MAX)));
            if (std::find(seeds.begin(), seeds.end(), seed) != seeds.end())
                r.fail(s, "seed " + std::to_string(seed) + " is listed twice");
            seeds.push_back(seed);
        }
    } else {
        seeds.push_back(root["seed"] ? uint64_t(r.integer(root["seed"], "seed", 0, double(INT64_MAX))) : 0);
    }
    return seeds;
}

std::optional<CompareTarget> read_target(const YamlReader& r, const YAML::Node& target) {
    if (!target) return std::nullopt;
    if (!target.IsMap()) r.fail(target, "compare.target must be { metric: test_accuracy, value: 0.88 }");
    r.check_keys(target, {"metric", "value"}, "compare.target");
    const YAML::Node metric = r.require(target, "metric", "compare.target");
    const std::string name = r.scalar(metric, "compare.target.metric");
    const auto m = metric_named(name);
    if (!m)
        r.fail(metric, "compare.target.metric '" + name + "' is not one of " + join(metric_names()) +
                           did_you_mean(name, metric_names()));
    return CompareTarget{*m, r.real(r.require(target, "value", "compare.target"), "compare.target.value")};
}

// The variant's name, checked: it names a folder.
std::string variant_name(const YamlReader& r, const YAML::Node& key, const YAML::Node& value) {
    const std::string name = r.scalar(key, "a variant's name");
    if (const std::string problem = folder_name_problem(name); !problem.empty())
        r.fail(key, "variant name '" + name + "' " + problem + ": it names the variant's folder");
    // Beside the variants' folders lie the comparison's own files.
    const bool ends_svg = name.size() >= 4 && name.compare(name.size() - 4, 4, ".svg") == 0;
    if (name == "comparison.csv" || name == "comparison.json" || name == "trials.csv" || name == "report.html" || ends_svg)
        r.fail(key, "variant name '" + name + "' is the name of a file the comparison writes; rename the variant");
    if (!value.IsNull() && !value.IsMap()) r.fail(value, "variant '" + name + "' must map experiment keys to new values");
    if (value.IsMap() && (value["compare"] || value["seed"] || value["name"]))
        r.fail(value, "variant '" + name + "' cannot change name, seed or compare");
    return name;
}

// Reads the file's runs. Each run is read from a document of its own, parsed afresh,
// so that every value keeps its line and column (yaml-cpp's Clone drops them).
class ComparisonReader {
public:
    ComparisonReader(const std::string& text, const fs::path& file, const std::vector<std::string>& overrides,
                     Registry& registry, const DocumentHook& hook)
        : text_(text), file_(file), overrides_(overrides), registry_(registry), hook_(hook) {}

    // The document with the overrides applied, and the reader that knows its nodes.
    std::pair<YAML::Node, std::unique_ptr<YamlReader>> document() const {
        auto reader = std::make_unique<YamlReader>(file_, registry_);
        YAML::Node root = reader->parse(text_);
        if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
        for (const auto& o : overrides_) reader->apply_override(root, o);
        if (hook_) hook_(*reader, root);
        return {root, std::move(reader)};
    }

    std::optional<Comparison> read() const {
        auto [root, r] = document();
        if (!root.IsMap() || !root["compare"]) return std::nullopt;
        const YAML::Node compare = root["compare"];
        if (!compare.IsMap()) r->fail(compare, "compare must be a mapping with variants (and seeds, target)");
        r->check_keys(compare, {"variants", "seeds", "target", "tuning"}, "compare");
        Comparison c;
        c.name = root["name"] ? r->scalar(root["name"], "name") : file_.stem().string();
        const YAML::Node variants = r->require(compare, "variants", "compare");
        if (!variants.IsMap() || variants.size() == 0)
            r->fail(variants, "compare.variants must map each variant's name to the keys it changes, e.g. "
                              "{ sgd: { optimizer: { name: sgd, lr: 0.1 } }, adam: {} }");
        c.seeds = read_seeds(*r, compare, root);
        c.target = read_target(*r, compare["target"]);
        c.tuning = read_tuning(*r, compare["tuning"]);
        for (const auto& kv : variants) {
            const std::string name = variant_name(*r, kv.first, kv.second);
            try {
                add_variant(c, name, *r, kv.first, kv.second);
            } catch (const Error& err) {
                throw Error(std::string(err.what()) + " (in compare variant '" + name + "')");
            }
        }
        if (c.tuning && c.tuned.empty())
            r->fail(compare["tuning"], "compare.tuning is set, but no variant declares a search space; give a key "
                                       "a range in place of a value, e.g. { optimizer: { lr: { log_uniform: [1e-4, 1] } } }");
        return c;
    }

private:
    // A value put in place of a sweep or a search space: its key path, its YAML text,
    // and what messages about it say.
    struct Substitution {
        std::string key, text, note;
    };

    // The variant `name`: one variant per value when it sweeps, its trials when it
    // declares a search space, each with every seed.
    void add_variant(Comparison& c, const std::string& name, const YamlReader& r, const YAML::Node& key,
                     const YAML::Node& value) const {
        std::vector<std::pair<std::string, YAML::Node>> sweeps, searched, misspelt;
        find_all(value, "", is_sweep, sweeps);
        find_all(value, "", is_search, searched);
        find_all(value, "", is_misspelt_search, misspelt);
        if (!misspelt.empty()) {
            const std::string k = (*misspelt[0].second.begin()).first.Scalar();
            r.fail(misspelt[0].second, misspelt[0].first + ": '" + k + "' is not a search space" +
                                           did_you_mean(k, {"uniform", "log_uniform", "choice"}));
        }
        if (!searched.empty()) {
            if (!sweeps.empty())
                r.fail(sweeps[0].second, "variant '" + name + "' searches " + searched[0].first +
                                             " already; a variant sweeps or searches, not both (make another variant)");
            add_tuned(c, name, r, key, searched);
            return;
        }
        if (sweeps.empty()) {
            check_size(c, c.seeds.size(), r, key);
            add_seeds(c, name, name, {}, r, key);
            return;
        }
        if (sweeps.size() > 1)
            r.fail(sweeps[1].second, "variant '" + name + "' sweeps " + sweeps[0].first +
                                         " already; one sweep per variant (make another variant for " + sweeps[1].first + ")");
        const auto& [swept, sweep] = sweeps[0];
        if (swept.empty())
            r.fail(sweep, "a sweep stands for one value under a key, e.g. { optimizer: { lr: { sweep: log, from: "
                          "1e-4, to: 1, points: 5 } } }, not for a whole variant");
        CompareSweep s{name, swept, {}, {}, false};
        s.values = sweep_values(r, sweep, s.log);
        check_size(c, s.values.size() * c.seeds.size(), r, key);
        const std::vector<std::string> labels = value_labels(s.values);
        for (std::size_t i = 0; i < s.values.size(); ++i) {
            s.variants.push_back(c.variants.size());
            const std::string text = shortest_double(s.values[i]);
            add_seeds(c, name + "@" + labels[i], name, {{swept, text, swept + " swept to " + text}}, r, key);
        }
        c.sweeps.push_back(std::move(s));
    }

    // A variant with a search space: its trials drawn (compare.tuning), each read as a
    // run of the tuning seed and budget, and as a run of every seed.
    void add_tuned(Comparison& c, const std::string& name, const YamlReader& r, const YAML::Node& key,
                   const std::vector<std::pair<std::string, YAML::Node>>& searched) const {
        if (!c.tuning)
            r.fail(searched[0].second, searched[0].first + " is a search space; searching needs compare.tuning, e.g. "
                                       "tuning: { trials: 16, metric: val_accuracy }");
        const Tuning& tuning = *c.tuning;
        TunedVariant tv{c.variants.size(), {}, {}};
        for (const auto& [k, n] : searched) {
            if (k.empty()) r.fail(n, "a search space stands for one value under a key, not for a whole variant");
            tv.space.push_back(read_dimension(r, k, n));
        }
        std::vector<std::vector<std::string>> draws;
        try {
            draws = draw_trials(tv.space, tuning.method, tuning.trials, Random(tuning.seed).derive("tuning").derive(name));
        } catch (const Error& e) {
            r.fail(key, e.what());
        }
        check_size(c, draws.size() * (1 + c.seeds.size()), r, key);
        if (std::find(c.variants.begin(), c.variants.end(), name) != c.variants.end())
            r.fail(key, "two variants are named '" + name + "'; rename one");
        for (std::size_t t = 0; t < draws.size(); ++t) {
            std::vector<Substitution> values;
            for (std::size_t d = 0; d < tv.space.size(); ++d)
                values.push_back({tv.space[d].key, draws[t][d],
                                  tv.space[d].key + " drawn as " + draws[t][d] + " in trial " + std::to_string(t + 1)});
            Trial trial{draws[t], read_run(c, name, tuning.seed, values, tuning.budget), {}};
            for (uint64_t seed : c.seeds) trial.seeds.push_back(read_run(c, name, seed, values, 0));
            tv.trials.push_back(std::move(trial));
        }
        c.variants.push_back(name);
        c.runs.emplace_back();
        c.tuned.push_back(std::move(tv));
    }

    // Every run is read (and kept) before any trains: the grid must stay of a size that
    // one machine holds and someone means to train. Checked before `more` runs are read.
    static void check_size(const Comparison& c, std::size_t more, const YamlReader& r, const YAML::Node& key) {
        std::size_t runs = more;
        for (const auto& v : c.runs) runs += v.size();
        for (const auto& tv : c.tuned) runs += tv.trials.size() * (1 + c.seeds.size());
        if (runs > max_runs)
            r.fail(key, "the comparison would hold " + std::to_string(runs) + " runs (trials and seeds included), more than " +
                            std::to_string(max_runs) + "; split it, or sweep or search fewer points");
    }

    // The variant `label` with every seed, read from the variant `name` of the file.
    void add_seeds(Comparison& c, const std::string& label, const std::string& name,
                   const std::vector<Substitution>& values, const YamlReader& r, const YAML::Node& key) const {
        if (std::find(c.variants.begin(), c.variants.end(), label) != c.variants.end())
            r.fail(key, "two variants are named '" + label + "'; rename one");
        c.variants.push_back(label);
        std::vector<Experiment> runs;
        for (uint64_t seed : c.seeds) runs.push_back(read_run(c, name, seed, values, 0));
        c.runs.push_back(std::move(runs));
    }

    // One run of the variant `name`: the document afresh with `values` in place of its
    // sweep or search space, the variant merged in, the seed set (and the epochs,
    // when not 0).
    Experiment read_run(const Comparison& c, const std::string& name, uint64_t seed,
                        const std::vector<Substitution>& values, int64_t epochs) const {
        auto [root, reader] = document();
        YAML::Node variant = root["compare"]["variants"][name];
        for (const auto& v : values) {
            YAML::Node n = at_path(variant, v.key);
            const std::string at = reader->where(n);
            n = v.text;   // replaces the map in the variant, and with it its place
            reader->place(n, at + " (" + v.note + ")");
        }
        root.remove("compare");
        if (variant.IsMap()) merge_over(*reader, root, variant);
        root["seed"] = seed;
        root["name"] = c.name;
        if (epochs > 0) root["train"]["epochs"] = epochs;
        return read_experiment(*reader, root);
    }

    const std::string& text_;
    fs::path file_;
    const std::vector<std::string>& overrides_;
    Registry& registry_;
    const DocumentHook& hook_;
};

}  // namespace

std::vector<const Experiment*> Comparison::every_run() const {
    std::vector<const Experiment*> all;
    for (const auto& v : runs)
        for (const auto& e : v) all.push_back(&e);
    for (const auto& tv : tuned)
        for (const auto& t : tv.trials) {
            all.push_back(&t.run);
            for (const auto& e : t.seeds) all.push_back(&e);
        }
    return all;
}

std::optional<Comparison> parse_comparison(const std::string& text, const fs::path& file,
                                           const std::vector<std::string>& overrides, Registry& registry,
                                           const DocumentHook& hook) {
    return ComparisonReader(text, file, overrides, registry, hook).read();
}

std::optional<Comparison> load_comparison(const fs::path& file, const std::vector<std::string>& overrides,
                                          Registry& registry) {
    return parse_comparison(read_experiment_file(file), fs::absolute(file), overrides, registry);
}

}  // namespace bp
