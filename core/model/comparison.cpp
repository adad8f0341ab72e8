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

// `over` merged into `base`: maps key by key, anything else replaced. A map naming a
// different component (`name:`) replaces the base's whole, so no parameter of the old
// component leaks into the new one. Nodes of `over` are shared, not copied, so they
// keep their place in the file for messages; a key the variant adds is placed at the
// variant's key.
void merge_into(YamlReader& r, YAML::Node base, const YAML::Node& over) {
    const bool other_component = base.IsMap() && over.IsMap() && base["name"] && over["name"] &&
                                 base["name"].IsScalar() && over["name"].IsScalar() &&
                                 base["name"].Scalar() != over["name"].Scalar();
    if (other_component) {
        // The optimizer's schedule (and its warmup) belongs to the experiment, not to
        // the optimizer it replaces: it stays unless the variant sets its own.
        const YAML::Node schedule = base["schedule"];
        base = over;
        if (schedule && !over["schedule"]) base["schedule"] = schedule;
        return;
    }
    if (!base.IsMap() || !over.IsMap()) {
        base = over;
        return;
    }
    // The pairs first: `over` may be `base` itself through an alias, and inserting into
    // a map while iterating it reads freed memory (fuzz_experiment found it).
    std::vector<std::pair<YAML::Node, YAML::Node>> pairs;
    for (const auto& kv : over) pairs.emplace_back(kv.first, kv.second);
    for (const auto& kv : pairs) {
        const std::string key = kv.first.Scalar();
        const bool added = !std::as_const(base)[key];
        if (!added && base[key].IsMap() && kv.second.IsMap()) merge_into(r, base[key], kv.second);
        else base[key] = kv.second;
        if (added)
            for (const auto& entry : base)
                if (entry.first.IsScalar() && entry.first.Scalar() == key) r.place(entry.first, r.where(kv.first));
    }
}

// The first {sweep: ...} map under `n` (its dotted key path in `key`), or an invalid node.
YAML::Node find_sweep(YAML::Node n, const std::string& path, std::string& key) {
    if (!n.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    if (n["sweep"]) {
        key = path;
        return n;
    }
    for (auto kv : n) {
        const std::string sub = path.empty() ? kv.first.Scalar() : path + "." + kv.first.Scalar();
        if (YAML::Node found = find_sweep(kv.second, sub, key); found) return found;
    }
    return YAML::Node(YAML::NodeType::Undefined);
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
    if (name == "comparison.csv" || name == "comparison.json" || name == "report.html" || ends_svg)
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
                     Registry& registry)
        : text_(text), file_(file), overrides_(overrides), registry_(registry) {}

    // The document with the overrides applied, and the reader that knows its nodes.
    std::pair<YAML::Node, std::unique_ptr<YamlReader>> document() const {
        auto reader = std::make_unique<YamlReader>(file_, registry_);
        YAML::Node root = reader->parse(text_);
        if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
        for (const auto& o : overrides_) reader->apply_override(root, o);
        return {root, std::move(reader)};
    }

    std::optional<Comparison> read() const {
        auto [root, r] = document();
        if (!root.IsMap() || !root["compare"]) return std::nullopt;
        const YAML::Node compare = root["compare"];
        if (!compare.IsMap()) r->fail(compare, "compare must be a mapping with variants (and seeds, target)");
        r->check_keys(compare, {"variants", "seeds", "target"}, "compare");
        Comparison c;
        c.name = root["name"] ? r->scalar(root["name"], "name") : file_.stem().string();
        const YAML::Node variants = r->require(compare, "variants", "compare");
        if (!variants.IsMap() || variants.size() == 0)
            r->fail(variants, "compare.variants must map each variant's name to the keys it changes, e.g. "
                              "{ sgd: { optimizer: { name: sgd, lr: 0.1 } }, adam: {} }");
        c.seeds = read_seeds(*r, compare, root);
        c.target = read_target(*r, compare["target"]);
        for (const auto& kv : variants) {
            const std::string name = variant_name(*r, kv.first, kv.second);
            try {
                add_variant(c, name, *r, kv.first, kv.second);
            } catch (const Error& err) {
                throw Error(std::string(err.what()) + " (in compare variant '" + name + "')");
            }
        }
        return c;
    }

private:
    // The variant `name` (one per value when it sweeps), each with every seed.
    void add_variant(Comparison& c, const std::string& name, const YamlReader& r, const YAML::Node& key,
                     const YAML::Node& value) const {
        std::string swept;
        const YAML::Node sweep = value.IsMap() ? find_sweep(value, "", swept) : YAML::Node(YAML::NodeType::Undefined);
        if (!sweep) {
            check_size(c, 1, r, key);
            add_runs(c, name, name, std::nullopt, r, key);
            return;
        }
        if (swept.empty())
            r.fail(sweep, "a sweep stands for one value under a key, e.g. { optimizer: { lr: { sweep: log, from: "
                          "1e-4, to: 1, points: 5 } } }, not for a whole variant");
        CompareSweep s{name, swept, {}, {}, false};
        s.values = sweep_values(r, sweep, s.log);
        check_size(c, s.values.size(), r, key);
        const std::vector<std::string> labels = value_labels(s.values);
        for (std::size_t i = 0; i < s.values.size(); ++i) {
            s.variants.push_back(c.variants.size());
            add_runs(c, name + "@" + labels[i], name, s.values[i], r, key);
        }
        c.sweeps.push_back(std::move(s));
    }

    // Every run is read (and kept) before any trains: the grid must stay of a size that
    // one machine holds and someone means to train. Checked before `more` variants are read.
    static void check_size(const Comparison& c, std::size_t more, const YamlReader& r, const YAML::Node& key) {
        const std::size_t runs = (c.variants.size() + more) * c.seeds.size();
        if (runs > max_runs)
            r.fail(key, "the comparison would hold " + std::to_string(runs) + " runs (" +
                            std::to_string(c.variants.size() + more) + " variants x " + std::to_string(c.seeds.size()) +
                            " seeds), more than " + std::to_string(max_runs) + "; split it, or sweep fewer points");
    }

    // Every seed of one variant; `swept`: the value that replaces the variant's sweep.
    void add_runs(Comparison& c, const std::string& label, const std::string& name, std::optional<double> swept,
                  const YamlReader& r, const YAML::Node& key) const {
        if (std::find(c.variants.begin(), c.variants.end(), label) != c.variants.end())
            r.fail(key, "two variants are named '" + label + "'; rename one");

        c.variants.push_back(label);
        std::vector<Experiment> runs;
        for (uint64_t seed : c.seeds) {
            auto [root, reader] = document();
            YAML::Node variant = root["compare"]["variants"][name];
            if (swept) {
                std::string first, second;
                YAML::Node sweep = find_sweep(variant, "", first);
                const std::string at = reader->where(sweep);
                sweep = *swept;   // replaces the sweep map in the variant, and with it its place
                reader->place(sweep, at + " (" + first + " swept to " + shortest_double(*swept) + ")");
                if (YAML::Node again = find_sweep(variant, "", second); again)
                    reader->fail(again, "variant '" + name + "' sweeps " + first + " already; one sweep per variant "
                                        "(make another variant for " + second + ")");
            }
            root.remove("compare");
            if (variant.IsMap()) merge_into(*reader, root, variant);
            root["seed"] = seed;
            root["name"] = c.name;
            runs.push_back(read_experiment(*reader, root));
        }
        c.runs.push_back(std::move(runs));
    }

    const std::string& text_;
    fs::path file_;
    const std::vector<std::string>& overrides_;
    Registry& registry_;
};

}  // namespace

std::optional<Comparison> parse_comparison(const std::string& text, const fs::path& file,
                                           const std::vector<std::string>& overrides, Registry& registry) {
    return ComparisonReader(text, file, overrides, registry).read();
}

std::optional<Comparison> load_comparison(const fs::path& file, const std::vector<std::string>& overrides,
                                          Registry& registry) {
    return parse_comparison(read_experiment_file(file), fs::absolute(file), overrides, registry);
}

}  // namespace bp
