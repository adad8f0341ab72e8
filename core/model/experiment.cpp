#include "model/experiment.hpp"

#include "text/suggest.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <utility>

namespace fs = std::filesystem;

namespace bp {

namespace {

const std::vector<std::string> top_keys = {"name", "seed",  "data",    "model",
                                           "loss", "optimizer", "train", "plugins", "compare"};
const std::vector<std::string> target_metrics = {"test_accuracy", "test_loss", "validation_accuracy",
                                                 "validation_loss", "train_accuracy", "train_loss"};

// `over` merged into `base`: maps key by key, anything else replaced. A map naming a
// different component (`name:`) replaces the base's whole, so no parameter of the old
// component leaks into the new one.
void merge_into(YAML::Node base, const YAML::Node& over) {
    const bool other_component = base.IsMap() && over.IsMap() && base["name"] && over["name"] &&
                                 base["name"].IsScalar() && over["name"].IsScalar() &&
                                 base["name"].Scalar() != over["name"].Scalar();
    if (other_component) {
        // The optimizer's schedule (and its warmup) belongs to the experiment, not to
        // the optimizer it replaces: it stays unless the variant sets its own.
        const YAML::Node schedule = base["schedule"];
        base = YAML::Clone(over);
        if (schedule && !over["schedule"]) base["schedule"] = schedule;
        return;
    }
    if (!base.IsMap() || !over.IsMap()) {
        base = over;
        return;
    }
    for (const auto& kv : over) {
        const std::string key = kv.first.Scalar();
        if (base[key] && base[key].IsMap() && kv.second.IsMap()) merge_into(base[key], kv.second);
        else base[key] = kv.second;
    }
}

// The core's own sections are schemas too: one validation path for everything.
Schema train_schema() {
    return Schema()
        .integer("epochs", 10, 1, 1000000, "passes over the training set")
        .integer("batch_size", 32, 1, 1 << 20, "samples per optimizer step")
        .integer("shard_size", 32, 1, 1 << 16,
                 "rows per parallel work item; results depend on it, never on the thread count")
        .integer("threads", 0, 0, 1024, "worker threads; 0 or auto: all cores")
        .boolean("shuffle", true, "reshuffle the training set every epoch")
        .integer("checkpoint_every", 0, 0, 1000000, "also keep checkpoints/epoch-N.safetensors every N epochs (0: never)")
        .choice("best_metric", "auto",
                {"auto", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"},
                "the metric checkpoints/best.safetensors is best by; auto: val_loss with a validation split, "
                "else train_loss")
        .integer("patience", 0, 0, 1000000,
                 "stop early after this many epochs without a better best_metric (0: never)");
}

std::string shortest_double(double d) {
    char buf[40];
    for (int precision = 6; precision <= 17; ++precision) {
        std::snprintf(buf, sizeof buf, "%.*g", precision, d);
        if (std::strtod(buf, nullptr) == d) break;
    }
    std::string s = buf;
    // Keep it a float in YAML: "1" would read back as an integer.
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
    return s;
}

class Reader {
public:
    Reader(fs::path file, Registry& registry) : file_(std::move(file)), registry_(registry) {}

    YAML::Node parse(const std::string& text) {
        try {
            return YAML::Load(text);
        } catch (const YAML::ParserException& e) {
            throw Error(file_.string() + ":" + std::to_string(e.mark.line + 1) + ":" +
                        std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg);
        }
    }

    // "train.epochs=3" or "model.0.units=64": the value is YAML, so lists and maps work too.
    void apply_override(YAML::Node& root, const std::string& assignment) {
        const auto eq = assignment.find('=');
        if (eq == std::string::npos || eq == 0)
            throw Error("--set " + assignment + ": expected KEY.PATH=VALUE, e.g. --set train.epochs=3");
        const std::string path = assignment.substr(0, eq);
        YAML::Node value;
        try {
            value = YAML::Load(assignment.substr(eq + 1));
        } catch (const YAML::ParserException& e) {
            throw Error("--set " + assignment + ": the value is not valid YAML: " + e.msg);
        }
        if (!value.IsDefined() || value.IsNull()) value = YAML::Node(YAML::NodeType::Null);

        std::vector<std::string> parts;
        std::stringstream ss(path);
        for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
        YAML::Node node = root;
        for (std::size_t i = 0; i < parts.size(); ++i) {
            const bool last = i + 1 == parts.size();
            YAML::Node next;
            if (node.IsSequence()) {
                std::size_t idx = 0;
                try {
                    idx = std::stoul(parts[i]);
                } catch (...) {
                    throw Error("--set " + assignment + ": '" + parts[i] + "' indexes a list: use a number");
                }
                if (idx >= node.size())
                    throw Error("--set " + assignment + ": index " + parts[i] + " is past the end of the list (" +
                                std::to_string(node.size()) + " entries)");
                next.reset(node[idx]);
                if (!last && next.IsScalar()) {
                    // "- relu" becomes "- relu: {}" so that it can take a parameter.
                    const std::string name = next.Scalar();
                    next = YAML::Node(YAML::NodeType::Map);
                    next[name] = YAML::Node(YAML::NodeType::Map);
                }
                // A model entry {dense: {...}}: step into its single value.
                if (!last && next.IsMap() && next.size() == 1 && !std::as_const(next)[parts[i + 1]])
                    next.reset(next.begin()->second);
            } else if (node.IsScalar()) {
                // "loss: mse" and --set loss.x=1: turn the name into {name: mse}.
                const std::string name = node.as<std::string>();
                node = YAML::Node(YAML::NodeType::Map);
                node["name"] = name;
                next.reset(node[parts[i]]);
            } else {
                if (!node.IsMap() && !node.IsNull())
                    throw Error("--set " + assignment + ": cannot descend into '" + parts[i] + "'");
                next.reset(node[parts[i]]);
            }
            if (last) {
                next = value;
                overrides_.push_back({next, "--set " + assignment});
            } else if (!next.IsDefined() || next.IsNull()) {
                next = YAML::Node(YAML::NodeType::Map);
            }
            node.reset(next);
        }
    }

    Experiment read(const YAML::Node& root) {
        if (!root.IsMap()) fail(root, "an experiment is a mapping of keys (name, model, loss, ...)");
        check_keys(root, top_keys, "the experiment");
        Experiment e;
        e.file = file_;

        e.name = root["name"] ? scalar(root["name"], "name") : file_.stem().string();
        e.seed = root["seed"] ? uint64_t(integer(root["seed"], "seed", 0, INT64_MAX)) : 0;

        // Plugins first: the sections below may name their components.
        if (const auto plugins = root["plugins"]) {
            if (!plugins.IsSequence()) fail(plugins, "plugins must be a list of paths");
            for (const auto& p : plugins) {
                fs::path path = scalar(p, "plugins entry");
                if (path.is_relative()) path = file_.parent_path() / path;
                path = fs::absolute(path).lexically_normal();
                if (!fs::exists(path)) fail(p, "plugin path " + path.string() + " does not exist");
                try {
                    registry_.load_path(path);
                } catch (const Error& err) {
                    fail(p, err.what());
                }
                e.plugins.push_back(path);
            }
        }

        read_data(require(root, "data", "the experiment"), e);
        read_model(require(root, "model", "the experiment"), e);
        e.loss = named_component(require(root, "loss", "the experiment"), Kind::loss, "loss");
        const YAML::Node optimizer = require(root, "optimizer", "the experiment");
        e.optimizer = named_component(optimizer, Kind::optimizer, "optimizer", {"schedule"});
        if (optimizer.IsMap() && optimizer["schedule"]) {
            const YAML::Node schedule = optimizer["schedule"];
            e.schedule = named_component(schedule, Kind::schedule, "optimizer.schedule", {"warmup"});
            if (schedule.IsMap() && schedule["warmup"])
                e.warmup = integer(schedule["warmup"], "optimizer.schedule.warmup", 0, 1e6);
        } else {
            e.schedule = {Kind::schedule, "constant", Params::defaults(lookup(optimizer, Kind::schedule, "constant").schema),
                          where(optimizer)};
        }
        read_train(root["train"], e.train);
        if (e.warmup >= e.train.epochs)
            fail(optimizer["schedule"]["warmup"], "optimizer.schedule.warmup = " + std::to_string(e.warmup) +
                                                      " leaves no epoch of the " + std::to_string(e.train.epochs) +
                                                      " for the schedule; make it smaller than train.epochs");
        return e;
    }

    // The compare: block of `root` (overrides applied), each variant and seed read as
    // a whole experiment; nullopt without one.
    std::optional<Comparison> read_comparison(const YAML::Node& root) {
        if (!root.IsMap() || !root["compare"]) return std::nullopt;
        const YAML::Node compare = root["compare"];
        if (!compare.IsMap()) fail(compare, "compare must be a mapping with variants (and seeds, target)");
        check_keys(compare, {"variants", "seeds", "target"}, "compare");
        Comparison c;
        c.name = root["name"] ? scalar(root["name"], "name") : file_.stem().string();
        const YAML::Node variants = require(compare, "variants", "compare");
        if (!variants.IsMap() || variants.size() == 0)
            fail(variants, "compare.variants must map each variant's name to the keys it changes, e.g. "
                           "{ sgd: { optimizer: { name: sgd, lr: 0.1 } }, adam: {} }");
        if (const YAML::Node seeds = compare["seeds"]) {
            if (!seeds.IsSequence() || seeds.size() == 0) fail(seeds, "compare.seeds must be a list of integers");
            for (const auto& s : seeds) {
                c.seeds.push_back(uint64_t(integer(s, "a seed", 0, 9.2e18)));
                if (std::count(c.seeds.begin(), c.seeds.end(), c.seeds.back()) > 1)
                    fail(s, "seed " + std::to_string(c.seeds.back()) + " is listed twice");
            }
        } else {
            c.seeds.push_back(root["seed"] ? uint64_t(integer(root["seed"], "seed", 0, 9.2e18)) : 0);
        }
        if (const YAML::Node target = compare["target"]) {
            if (!target.IsMap()) fail(target, "compare.target must be { metric: test_accuracy, value: 0.88 }");
            check_keys(target, {"metric", "value"}, "compare.target");
            CompareTarget t;
            const YAML::Node metric = require(target, "metric", "compare.target");
            t.metric = scalar(metric, "compare.target.metric");
            if (std::find(target_metrics.begin(), target_metrics.end(), t.metric) == target_metrics.end())
                fail(metric, "compare.target.metric '" + t.metric + "' is not one of " + join(target_metrics) +
                                 did_you_mean(t.metric, target_metrics));
            t.value = real(require(target, "value", "compare.target"), "compare.target.value");
            c.target = t;
        }
        for (const auto& kv : variants) {
            const std::string name = scalar(kv.first, "a variant's name");
            if (name.empty() || name.find_first_of("/\\") != std::string::npos || name == "." || name == "..")
                fail(kv.first, "variant name '" + name + "' cannot name a folder");
            if (!kv.second.IsNull() && !kv.second.IsMap())
                fail(kv.second, "variant '" + name + "' must map experiment keys to new values");
            if (kv.second.IsMap() && (kv.second["compare"] || kv.second["seed"] || kv.second["name"]))
                fail(kv.second, "variant '" + name + "' cannot change name, seed or compare");
            // A sweep inside the variant becomes one variant per value: name@value.
            YAML::Node overrides = kv.second.IsMap() ? YAML::Clone(kv.second) : YAML::Node(YAML::NodeType::Map);
            std::string key;
            YAML::Node sweep_node = find_sweep(overrides, "", key);
            if (sweep_node) {
                std::string second;
                YAML::Node rest = YAML::Clone(overrides);
                find_sweep(rest, "", second) = 0.0;   // the first sweep, set aside
                if (YAML::Node again = find_sweep(rest, "", second); again)
                    fail(again, "variant '" + name + "' sweeps " + key + " already; one sweep per variant "
                                "(make another variant for " + second + ")");
            }
            std::vector<std::pair<std::string, YAML::Node>> expanded;
            if (!sweep_node) {
                expanded.push_back({name, overrides});
            } else {
                CompareSweep sweep{name, key, {}, {}, false};
                for (double v : sweep_values(sweep_node, sweep.log)) {
                    sweep_node = v;   // replaces the sweep map inside `overrides`
                    char label[32];
                    std::snprintf(label, sizeof label, "%.4g", v);
                    expanded.push_back({name + "@" + label, YAML::Clone(overrides)});
                    sweep.values.push_back(v);
                    sweep.variants.push_back(c.variants.size() + expanded.size() - 1);
                }
                c.sweeps.push_back(std::move(sweep));
            }
            for (const auto& [variant, over] : expanded) {
                if (std::find(c.variants.begin(), c.variants.end(), variant) != c.variants.end())
                    fail(kv.first, "two variants are named '" + variant + "'; rename one");
                c.variants.push_back(variant);
                std::vector<Experiment> runs;
                for (uint64_t seed : c.seeds) {
                    YAML::Node r = YAML::Clone(root);
                    r.remove("compare");
                    merge_into(r, over);
                    r["seed"] = seed;
                    r["name"] = c.name;
                    runs.push_back(read(r));
                }
                c.runs.push_back(std::move(runs));
            }
        }
        return c;
    }

private:
    // The first {sweep: ...} map under `n` (its dotted key path in `key`), or an invalid node.
    YAML::Node find_sweep(YAML::Node n, const std::string& path, std::string& key) const {
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

    // {sweep: log|linear, from, to, points}: the values, from first to last.
    std::vector<double> sweep_values(const YAML::Node& n, bool& log) const {
        check_keys(n, {"sweep", "from", "to", "points"}, "a sweep");
        const std::string kind = scalar(n["sweep"], "sweep");
        if (kind != "log" && kind != "linear") fail(n["sweep"], "sweep must be log or linear, got " + kind);
        log = kind == "log";
        const double from = real(require(n, "from", "a sweep"), "sweep.from");
        const double to = real(require(n, "to", "a sweep"), "sweep.to");
        const int64_t points = integer(require(n, "points", "a sweep"), "sweep.points", 2, 1000);
        if (log && (from <= 0 || to <= 0)) fail(n, "a log sweep needs from and to above 0");
        std::vector<double> out;
        for (int64_t i = 0; i < points; ++i) {
            const double t = double(i) / double(points - 1);
            out.push_back(i == points - 1 ? to : log ? from * std::pow(to / from, t) : from + (to - from) * t);
        }
        return out;
    }

    struct Override {
        YAML::Node node;
        std::string text;
    };

    std::string where(const YAML::Node& n) const {
        for (const auto& o : overrides_)
            if (o.node.is(n)) return o.text;
        const auto m = n.Mark();
        if (m.is_null()) return file_.string();
        return file_.string() + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
    }

    [[noreturn]] void fail(const YAML::Node& n, const std::string& msg) const { throw Error(where(n) + ": " + msg); }

    YAML::Node require(const YAML::Node& map, const std::string& key, const std::string& section) const {
        const YAML::Node n = map[key];
        if (!n || n.IsNull()) fail(map, section + " needs '" + key + "'");
        return n;
    }

    void check_keys(const YAML::Node& map, const std::vector<std::string>& allowed, const std::string& section) const {
        for (const auto& kv : map) {
            if (!kv.first.IsScalar()) fail(kv.first, "a key in " + section + " must be a plain name");
            const std::string key = kv.first.Scalar();
            if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
                fail(kv.first, "unknown key '" + key + "' in " + section + did_you_mean(key, allowed) +
                                   "; allowed: " + join(allowed));
            }
        }
    }

    std::string scalar(const YAML::Node& n, const std::string& what) const {
        if (!n.IsScalar()) fail(n, what + " must be a single value");
        return n.Scalar();
    }

    double real(const YAML::Node& n, const std::string& what) const {
        double d = 0;
        if (!n.IsScalar() || !YAML::convert<double>::decode(n, d) || !std::isfinite(d))
            fail(n, what + " must be a finite number, got " + shown(n));
        return d;
    }

    int64_t integer(const YAML::Node& n, const std::string& what, double min, double max) const {
        int64_t v = 0;
        if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, v))
            fail(n, what + " must be an integer, got " + shown(n));
        if (double(v) < min || double(v) > max)
            fail(n, what + " = " + std::to_string(v) + " is out of range " + range(min, max));
        return v;
    }

    static std::string range(double min, double max) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "[%.10g, %.10g]", min, max);
        return buf;
    }

    static std::string shown(const YAML::Node& n) {
        if (n.IsScalar()) return "'" + n.Scalar() + "'";
        if (n.IsSequence()) return "a list";
        if (n.IsMap()) return "a mapping";
        return "nothing";
    }

    // One schema-checked value.
    Value value(const ParamSpec& spec, const YAML::Node& n, const std::string& what) const {
        switch (spec.type) {
            case ParamType::boolean: {
                bool b = false;
                if (!n.IsScalar() || !YAML::convert<bool>::decode(n, b))
                    fail(n, what + " must be true or false, got " + shown(n));
                return b;
            }
            case ParamType::integer:
                return integer(n, what, spec.min.value_or(double(INT64_MIN)), spec.max.value_or(double(INT64_MAX)));
            case ParamType::number: {
                double d = 0;
                if (!n.IsScalar() || !YAML::convert<double>::decode(n, d) || !std::isfinite(d))
                    fail(n, what + " must be a number, got " + shown(n));
                if ((spec.min && d < *spec.min) || (spec.max && d > *spec.max))
                    fail(n, what + " = " + n.Scalar() + " is out of range " + range(*spec.min, *spec.max));
                return d;
            }
            case ParamType::text:
                return scalar(n, what);
            case ParamType::choice: {
                const std::string s = scalar(n, what);
                if (std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end())
                    fail(n, what + " = '" + s + "' is not one of: " + join(spec.choices) + did_you_mean(s, spec.choices));
                return s;
            }
            case ParamType::activation: {
                const std::string s = scalar(n, what);
                try {
                    registry_.get(Kind::activation, s);
                } catch (const Error& err) {
                    fail(n, what + ": " + err.what());
                }
                return s;
            }
        }
        fail(n, "unhandled parameter type");
    }

    // Checks a mapping against a schema (plus `extra` keys the caller reads itself)
    // and fills the defaults.
    Params params(const YAML::Node& map, const Schema& schema, const std::string& section,
                  const std::vector<std::string>& extra = {}) const {
        std::vector<std::string> allowed = extra;
        for (const auto& s : schema.specs()) allowed.push_back(s.name);
        Params p = Params::defaults(schema);
        if (!map || map.IsNull()) return p;
        if (!map.IsMap()) fail(map, section + " takes a mapping of parameters (" + join(allowed) + ")");
        check_keys(map, allowed, section);
        for (const auto& spec : schema.specs())
            if (const auto n = map[spec.name]) p.set(spec.name, value(spec, n, section + "." + spec.name));
        return p;
    }

    const ComponentInfo& lookup(const YAML::Node& at, Kind kind, const std::string& name) const {
        try {
            return *registry_.get(kind, name).info;
        } catch (const Error& err) {
            fail(at, err.what());
        }
    }

    // "loss: mse" or "optimizer: {name: adam, lr: 0.01}"; `extra`: keys the caller reads itself.
    ComponentConfig named_component(const YAML::Node& n, Kind kind, const std::string& section,
                                    const std::vector<std::string>& extra = {}) const {
        ComponentConfig c;
        c.kind = kind;
        c.where = where(n);
        if (n.IsScalar()) {
            c.name = n.Scalar();
            c.params = Params::defaults(lookup(n, kind, c.name).schema);
            return c;
        }
        if (!n.IsMap()) fail(n, section + " must be a name or a mapping with 'name' and parameters");
        const YAML::Node name = require(n, "name", section);
        c.name = scalar(name, section + ".name");
        std::vector<std::string> own = {"name"};
        own.insert(own.end(), extra.begin(), extra.end());
        c.params = params(n, lookup(name, kind, c.name).schema, section + " (" + c.name + ")", own);
        return c;
    }

    void read_data(const YAML::Node& n, Experiment& e) const {
        if (!n.IsMap()) fail(n, "data must be a mapping with 'source' and the dataset's parameters");
        const YAML::Node source = require(n, "source", "data");
        e.data.kind = Kind::dataset;
        e.data.where = where(n);
        e.data.name = scalar(source, "data.source");
        const Schema& schema = lookup(source, Kind::dataset, e.data.name).schema;
        e.data.params = params(n, schema, "data (" + e.data.name + ")", {"source", "validation_split"});
        if (const auto v = n["validation_split"]) {
            ParamSpec spec{"validation_split", ParamType::number, 0.0, 0.0, 0.9, {}, ""};
            e.validation_split = std::get<double>(value(spec, v, "data.validation_split"));
        }
    }

    // Each entry: "relu", "dense: {units: 8}" or "{dense: {units: 8}}".
    void read_model(const YAML::Node& n, Experiment& e) const {
        if (!n.IsSequence() || n.size() == 0) fail(n, "model must be a non-empty list of layers");
        for (std::size_t i = 0; i < n.size(); ++i) {
            const YAML::Node entry = n[i];
            const std::string what = "model[" + std::to_string(i) + "]";
            // Bind with reset(): yaml-cpp's operator= on a bound node overwrites the node itself.
            YAML::Node name_node, args;
            name_node.reset(entry);
            if (entry.IsMap()) {
                if (entry.size() != 1)
                    fail(entry, what + " must name one layer, e.g. '- dense: {units: 64}'");
                name_node.reset(entry.begin()->first);
                args.reset(entry.begin()->second);
            } else if (!entry.IsScalar()) {
                fail(entry, what + " must be a layer name or 'name: {parameters}'");
            }
            ComponentConfig c;
            c.name = name_node.Scalar();
            c.where = where(name_node);
            const RegisteredComponent* found = registry_.find(Kind::layer, c.name);
            c.kind = Kind::layer;
            if (!found && (found = registry_.find(Kind::activation, c.name))) c.kind = Kind::activation;
            if (!found) {
                auto known = registry_.names(Kind::layer);
                const auto acts = registry_.names(Kind::activation);
                std::vector<std::string> all = known;
                all.insert(all.end(), acts.begin(), acts.end());
                fail(name_node, "unknown layer '" + c.name + "'" + did_you_mean(c.name, all) + "; known layers: " +
                                    join(known) + "; activations usable as layers: " + join(acts));
            }
            c.params = params(args, found->info->schema, what + " (" + c.name + ")");
            e.model.push_back(std::move(c));
        }
    }

    void read_train(YAML::Node n, TrainConfig& t) const {
        if (n && n.IsMap() && n["threads"] && n["threads"].IsScalar() && n["threads"].Scalar() == "auto")
            n["threads"] = 0;  // the one non-integer spelling the schema cannot express
        const Params p = params(n, train_schema(), "train");
        t.epochs = p.integer("epochs");
        t.batch_size = p.integer("batch_size");
        t.shard_size = p.integer("shard_size");
        t.threads = p.integer("threads");
        t.shuffle = p.boolean("shuffle");
        t.checkpoint_every = p.integer("checkpoint_every");
        t.best_metric = p.text("best_metric");
        t.patience = p.integer("patience");
    }

    fs::path file_;
    Registry& registry_;
    std::vector<Override> overrides_;
};

void emit_params(YAML::Emitter& out, const Params& p) {
    for (const auto& [key, v] : p.values()) {
        out << YAML::Key << key << YAML::Value;
        if (auto d = std::get_if<double>(&v)) out << shortest_double(*d);
        else if (auto b = std::get_if<bool>(&v)) out << *b;
        else if (auto i = std::get_if<int64_t>(&v)) out << *i;
        else out << YAML::DoubleQuoted << std::get<std::string>(v);
    }
}

}  // namespace

Experiment parse_experiment(const std::string& text, const fs::path& file, const std::vector<std::string>& overrides,
                            Registry& registry) {
    Reader reader(file, registry);
    YAML::Node root = reader.parse(text);
    if (!root.IsDefined() || root.IsNull()) {
        if (overrides.empty()) throw Error(file.string() + ": the experiment file is empty");
        root = YAML::Node(YAML::NodeType::Map);
    }
    for (const auto& o : overrides) reader.apply_override(root, o);
    return reader.read(root);
}

namespace {

std::string read_experiment_file(const fs::path& file) {
    if (fs::is_directory(file)) throw Error(file.string() + ": is a folder; give the experiment's YAML file");
    std::ifstream in(file);
    if (!in) throw Error(file.string() + ": cannot open the experiment file");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

Experiment load_experiment(const fs::path& file, const std::vector<std::string>& overrides, Registry& registry) {
    return parse_experiment(read_experiment_file(file), fs::absolute(file), overrides, registry);
}

std::optional<Comparison> parse_comparison(const std::string& text, const fs::path& file,
                                           const std::vector<std::string>& overrides, Registry& registry) {
    Reader reader(file, registry);
    YAML::Node root = reader.parse(text);
    if (!root.IsDefined() || root.IsNull()) return std::nullopt;
    for (const auto& o : overrides) reader.apply_override(root, o);
    return reader.read_comparison(root);
}

std::optional<Comparison> load_comparison(const fs::path& file, const std::vector<std::string>& overrides,
                                          Registry& registry) {
    return parse_comparison(read_experiment_file(file), fs::absolute(file), overrides, registry);
}

std::string to_yaml(const Experiment& e) {
    YAML::Emitter out;
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << e.name;
    out << YAML::Key << "seed" << YAML::Value << e.seed;
    out << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "source" << YAML::Value << e.data.name;
    out << YAML::Key << "validation_split" << YAML::Value << shortest_double(e.validation_split);
    emit_params(out, e.data.params);
    out << YAML::EndMap;
    out << YAML::Key << "model" << YAML::Value << YAML::BeginSeq;
    for (const auto& layer : e.model) {
        out << YAML::BeginMap << YAML::Key << layer.name << YAML::Value << YAML::Flow << YAML::BeginMap;
        emit_params(out, layer.params);
        out << YAML::EndMap << YAML::EndMap;
    }
    out << YAML::EndSeq;
    for (const auto* c : {&e.loss, &e.optimizer}) {
        out << YAML::Key << to_string(c->kind) << YAML::Value << YAML::BeginMap;
        out << YAML::Key << "name" << YAML::Value << c->name;
        emit_params(out, c->params);
        if (c == &e.optimizer) {
            out << YAML::Key << "schedule" << YAML::Value << YAML::Flow << YAML::BeginMap;
            out << YAML::Key << "name" << YAML::Value << e.schedule.name;
            if (e.warmup > 0) out << YAML::Key << "warmup" << YAML::Value << e.warmup;
            emit_params(out, e.schedule.params);
            out << YAML::EndMap;
        }
        out << YAML::EndMap;
    }
    out << YAML::Key << "train" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "epochs" << YAML::Value << e.train.epochs;
    out << YAML::Key << "batch_size" << YAML::Value << e.train.batch_size;
    out << YAML::Key << "shard_size" << YAML::Value << e.train.shard_size;
    out << YAML::Key << "threads" << YAML::Value << e.train.threads;
    out << YAML::Key << "shuffle" << YAML::Value << e.train.shuffle;
    out << YAML::Key << "checkpoint_every" << YAML::Value << e.train.checkpoint_every;
    out << YAML::Key << "best_metric" << YAML::Value << e.train.best_metric;
    out << YAML::Key << "patience" << YAML::Value << e.train.patience;
    out << YAML::EndMap;
    if (!e.plugins.empty()) {
        out << YAML::Key << "plugins" << YAML::Value << YAML::BeginSeq;
        for (const auto& p : e.plugins) out << p.string();
        out << YAML::EndSeq;
    }
    out << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
}

}  // namespace bp
