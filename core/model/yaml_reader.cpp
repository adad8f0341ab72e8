#include "model/yaml_reader.hpp"

#include "text/format.hpp"
#include "text/suggest.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <utility>

namespace fs = std::filesystem;

namespace bp {

namespace {

std::string location(const fs::path& file, const YAML::Mark& m) {
    return file.string() + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

// A document may hold at most this many values, aliases expanded, nested at most this
// deep: anchors and aliases can make a kilobyte denote a billion values, or a mapping
// that holds itself (`&t {o: *t}`), which every later walk would follow for ever.
constexpr std::size_t max_values = 100000, max_depth = 64;

// Every mapping under `n` gives each key once. `path` names the mapping as --set
// would ("train", "model.0.dense"); `values` counts what has been visited.
// `place`: the file the document came from, or the --set it came from.
struct Place {
    fs::path file;
    std::string override_text;
    std::string at(const YAML::Mark& m) const { return override_text.empty() ? location(file, m) : override_text; }
};

void refuse_repeated_keys(const YAML::Node& n, const std::string& path, const Place& file, std::size_t& values,
                          std::size_t depth = 0) {
    if (++values > max_values)
        throw Error(file.at(n.Mark()) + ": the document holds more than " + std::to_string(max_values) +
                    " values once its aliases are expanded (anchors repeating a mapping?); an experiment is "
                    "far smaller");
    if (depth > max_depth)
        throw Error(file.at(n.Mark()) + ": the document nests more than " + std::to_string(max_depth) +
                    " levels deep (an alias to a mapping inside itself?)");
    if (n.IsSequence()) {
        for (std::size_t i = 0; i < n.size(); ++i)
            refuse_repeated_keys(n[i], path.empty() ? std::to_string(i) : path + "." + std::to_string(i), file, values,
                                 depth + 1);
        return;
    }
    if (!n.IsMap()) return;
    std::map<std::string, YAML::Mark> seen;
    for (const auto& kv : n) {
        // A key that is not a plain name is refused where it is read; what it and its
        // value hold is walked all the same (an alias under a null key can close a loop).
        const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
        if (kv.first.IsScalar()) {
            const auto [first, fresh] = seen.emplace(key, kv.first.Mark());
            if (!fresh)
                throw Error(file.at(kv.first.Mark()) + ": '" + key + "' is given twice in " +
                            (path.empty() ? "the experiment" : path) + " (first at line " +
                            std::to_string(first->second.line + 1) + "); remove one");
        } else {
            refuse_repeated_keys(kv.first, path, file, values, depth + 1);
        }
        refuse_repeated_keys(kv.second, path.empty() ? key : path + "." + key, file, values, depth + 1);
    }
}

}  // namespace

std::string shown(const YAML::Node& n) {
    if (n.IsScalar()) return "'" + n.Scalar() + "'";
    if (n.IsSequence()) return "a list";
    if (n.IsMap()) return "a mapping";
    return "nothing";
}

YAML::Node parse_yaml(const std::string& text, const fs::path& file) {
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        throw Error(location(file, e.mark) + ": YAML syntax error: " + e.msg);
    }
    std::size_t values = 0;
    refuse_repeated_keys(root, "", {file, ""}, values);
    return root;
}

YAML::Node YamlReader::parse(const std::string& text) const { return parse_yaml(text, file_); }

YAML::Node YamlReader::override_value(const std::string& assignment, const std::string& origin) {
    const auto eq = assignment.find('=');
    const std::string text = origin + " " + assignment;
    if (eq == std::string::npos || eq == 0)
        throw Error(text + ": expected KEY.PATH=VALUE, e.g. " +
                    (origin == "--set" ? "--set train.epochs=3" : "set: [train.epochs=3]"));
    YAML::Node value;
    try {
        value = YAML::Load(assignment.substr(eq + 1));
    } catch (const YAML::Exception& e) {
        throw Error(text + ": the value is not valid YAML: " + e.msg);
    }
    std::size_t values = 0;
    refuse_repeated_keys(value, assignment.substr(0, eq), {file_, text}, values);
    place_all(value, text);   // a value inside a mapping or list given whole names the override too
    if (!value.IsDefined() || value.IsNull()) value = YAML::Node(YAML::NodeType::Null);
    return value;
}

void YamlReader::apply_override(YAML::Node& root, const std::string& assignment, const std::string& origin) {
    YAML::Node value = override_value(assignment, origin);
    const auto eq = assignment.find('=');
    const std::string text = origin + " " + assignment;
    std::vector<std::string> parts;
    std::stringstream ss(assignment.substr(0, eq));
    for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
    YAML::Node node = root;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const bool last = i + 1 == parts.size();
        bool added_key = false;
        YAML::Node next;
        if (node.IsSequence()) {
            const std::string& digits = parts[i];
            if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
                throw Error(text + ": '" + digits + "' indexes a list: use a number (0 is the first entry)");
            const std::size_t idx = std::stoul(digits);
            if (idx >= node.size())
                throw Error(text + ": index " + parts[i] + " is past the end of the list (" +
                            std::to_string(node.size()) + " entries)");
            next.reset(node[idx]);
            if (!last && next.IsScalar()) {
                // "- relu" becomes "- relu: {}" so that it can take a parameter.
                const std::string name = next.Scalar();
                next = YAML::Node(YAML::NodeType::Map);
                next[name] = YAML::Node(YAML::NodeType::Map);
            }
            // A model entry {dense: {...}} (with a name: and inputs: beside, maybe): step
            // into the layer's value, unless the next part is a key of the entry itself.
            // (name:, trainable:, ... are the entry's own, never the layer's).
            if (!last && next.IsMap() && !std::as_const(next)[parts[i + 1]] &&
                std::find(model_entry_keys.begin(), model_entry_keys.end(), parts[i + 1]) == model_entry_keys.end()) {
                YAML::Node layer;
                int layers = 0;
                for (const auto& kv : next)
                    if (!kv.first.IsScalar() || std::find(model_entry_keys.begin(), model_entry_keys.end(),
                                                          kv.first.Scalar()) == model_entry_keys.end()) {
                        layer.reset(kv.second);
                        ++layers;
                    }
                if (layers == 1) next.reset(layer);
            }
        } else {
            if (node.IsScalar()) {
                // "loss: mse" and --set loss.x=1: turn the name into {name: mse}.
                const std::string name = node.Scalar();
                node = YAML::Node(YAML::NodeType::Map);
                node["name"] = name;
            }
            if (!node.IsMap() && !node.IsNull()) throw Error(text + ": cannot descend into '" + parts[i] + "'");
            added_key = !(node.IsMap() && std::as_const(node)[parts[i]]);
            next.reset(node[parts[i]]);
        }
        if (last) {
            next = value;
            overrides_.push_back({next, text});
        } else if (!next.IsDefined() || next.IsNull()) {
            next = YAML::Node(YAML::NodeType::Map);
        }
        // A key the file does not have: if it is unknown, the override is the mistake.
        if (added_key)
            for (const auto& kv : node)
                if (kv.first.IsScalar() && kv.first.Scalar() == parts[i]) overrides_.push_back({kv.first, text});
        node.reset(next);
    }
}

void YamlReader::place(const YAML::Node& node, const std::string& where) { overrides_.push_back({node, where}); }

void YamlReader::place_from(const YAML::Node& node, const YamlReader& source) {
    place(node, source.where(node));
    if (node.IsSequence())
        for (const auto& item : node) place_from(item, source);
    if (node.IsMap())
        for (const auto& kv : node) place_from(kv.first, source), place_from(kv.second, source);
}

void YamlReader::place_all(const YAML::Node& node, const std::string& where) {
    place(node, where);
    if (node.IsSequence())
        for (const auto& item : node) place_all(item, where);
    if (node.IsMap())
        for (const auto& kv : node) place_all(kv.first, where), place_all(kv.second, where);
}

std::string YamlReader::where(const YAML::Node& n) const {
    // The latest place given wins: it says more (a suite's line, then the trial that drew it there).
    for (auto o = overrides_.rbegin(); o != overrides_.rend(); ++o)
        if (o->node.is(n)) return o->text;
    const auto m = n.Mark();
    if (m.is_null()) return file_.string();
    return location(file_, m);
}

void YamlReader::fail(const YAML::Node& n, const std::string& msg) const { throw Error(where(n) + ": " + msg); }

YAML::Node YamlReader::require(const YAML::Node& map, const std::string& key, const std::string& section) const {
    const YAML::Node n = map[key];
    if (!n || n.IsNull()) fail(map, section + " needs '" + key + "'");
    return n;
}

void YamlReader::check_keys(const YAML::Node& map, const std::vector<std::string>& allowed,
                            const std::string& section) const {
    for (const auto& kv : map) {
        if (!kv.first.IsScalar()) fail(kv.first, "a key in " + section + " must be a plain name");
        const std::string key = kv.first.Scalar();
        if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
            fail(kv.first, "unknown key '" + key + "' in " + section + did_you_mean(key, allowed) +
                               "; allowed: " + join(allowed));
    }
}

std::string YamlReader::scalar(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) fail(n, what + " must be a single value");
    return n.Scalar();
}

double YamlReader::real(const YAML::Node& n, const std::string& what) const {
    double d = 0;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, d) || !std::isfinite(d))
        fail(n, what + " must be a finite number, got " + shown(n));
    return d;
}

int64_t YamlReader::integer(const YAML::Node& n, const std::string& what, double min, double max) const {
    int64_t v = 0;
    if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, v)) fail(n, what + " must be an integer, got " + shown(n));
    if (double(v) < min || double(v) > max)
        fail(n, what + " = " + std::to_string(v) + " is out of range " + range_text(min, max));
    return v;
}

Value YamlReader::value(const ParamSpec& spec, const YAML::Node& n, const std::string& what) const {
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
                fail(n, what + " = " + n.Scalar() + " is out of range " +
                            range_text(spec.min.value_or(-INFINITY), spec.max.value_or(INFINITY)));
            return d;
        }
        case ParamType::text: return scalar(n, what);
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

Params YamlReader::params(const YAML::Node& map, const Schema& schema, const std::string& section,
                          const std::vector<std::string>& extra) const {
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

const ComponentInfo& YamlReader::lookup(const YAML::Node& at, Kind kind, const std::string& name) const {
    try {
        return *registry_.get(kind, name).info;
    } catch (const Error& err) {
        fail(at, err.what());
    }
}

ComponentConfig YamlReader::named_component(const YAML::Node& n, Kind kind, const std::string& section,
                                            const std::vector<std::string>& extra) const {
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

void merge_over(YamlReader& r, YAML::Node base, const YAML::Node& over) {
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
        if (!added && base[key].IsMap() && kv.second.IsMap()) merge_over(r, base[key], kv.second);
        else base[key] = kv.second;
        if (added)
            for (const auto& entry : base)
                if (entry.first.IsScalar() && entry.first.Scalar() == key) r.place(entry.first, r.where(kv.first));
    }
}


}  // namespace bp
