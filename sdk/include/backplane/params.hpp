// Parameter schemas: each component declares its parameters once; the same
// declaration validates an experiment, fills defaults and prints the docs.
#pragma once

#include "backplane/error.hpp"

#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace bp {

enum class ParamType {
    boolean,
    integer,
    number,      // floating point
    text,        // free string, e.g. a file path
    choice,      // one of ParamSpec::choices
    activation,  // the name of an activation component (checked against the registry)
};

const char* to_string(ParamType t);

using Value = std::variant<bool, int64_t, double, std::string>;

struct ParamSpec {
    std::string name;
    ParamType type;
    Value default_value;
    std::optional<double> min, max;      // inclusive range for integer and number
    std::vector<std::string> choices;    // for ParamType::choice
    std::string doc;                     // one line
};

// The declared parameters of one component, built fluently:
//   Schema().integer("units", 32, 1, 1 << 20, "number of outputs")
//           .choice("init", "he", {"he", "xavier"}, "weight initialisation")
class Schema {
public:
    Schema& boolean(std::string name, bool def, std::string doc);
    Schema& integer(std::string name, int64_t def, int64_t min, int64_t max, std::string doc);
    Schema& number(std::string name, double def, double min, double max, std::string doc);
    Schema& text(std::string name, std::string def, std::string doc);
    Schema& choice(std::string name, std::string def, std::vector<std::string> choices, std::string doc);
    Schema& activation(std::string name, std::string def, std::string doc);

    const std::vector<ParamSpec>& specs() const { return specs_; }
    const ParamSpec* find(const std::string& name) const;

private:
    Schema& add(ParamSpec spec);
    std::vector<ParamSpec> specs_;
};

// Validated values, every schema entry present (defaults filled by the core).
// A component reads them in its factory; the typed getters throw bp::Error on a
// name that is not there or a value of another type, which is a plugin bug.
class Params {
public:
    Params() = default;
    void set(const std::string& name, Value v) { values_[name] = std::move(v); }
    bool has(const std::string& name) const { return values_.count(name) != 0; }

    bool boolean(const std::string& name) const { return get<bool>(name); }
    int64_t integer(const std::string& name) const { return get<int64_t>(name); }
    double number(const std::string& name) const { return get<double>(name); }
    const std::string& text(const std::string& name) const { return get<std::string>(name); }

    const std::map<std::string, Value>& values() const { return values_; }

    // Every schema default, for code that builds components without an experiment file.
    static Params defaults(const Schema& schema);

private:
    template <class T>
    const T& get(const std::string& name) const {
        auto it = values_.find(name);
        if (it == values_.end()) throw Error("parameter '" + name + "' is not set");
        if (auto* v = std::get_if<T>(&it->second)) return *v;
        throw Error("parameter '" + name + "' has another type");
    }
    std::map<std::string, Value> values_;
};

std::string format_value(const Value& v);

// ---- inline definitions: plugins use these without linking the core ----

inline const char* to_string(ParamType t) {
    switch (t) {
        case ParamType::boolean: return "bool";
        case ParamType::integer: return "int";
        case ParamType::number: return "float";
        case ParamType::text: return "string";
        case ParamType::choice: return "choice";
        case ParamType::activation: return "activation";
    }
    return "?";
}

inline Schema& Schema::add(ParamSpec spec) {
    specs_.push_back(std::move(spec));
    return *this;
}
inline Schema& Schema::boolean(std::string name, bool def, std::string doc) {
    return add({std::move(name), ParamType::boolean, def, {}, {}, {}, std::move(doc)});
}
inline Schema& Schema::integer(std::string name, int64_t def, int64_t min, int64_t max, std::string doc) {
    return add({std::move(name), ParamType::integer, def, double(min), double(max), {}, std::move(doc)});
}
inline Schema& Schema::number(std::string name, double def, double min, double max, std::string doc) {
    return add({std::move(name), ParamType::number, def, min, max, {}, std::move(doc)});
}
inline Schema& Schema::text(std::string name, std::string def, std::string doc) {
    return add({std::move(name), ParamType::text, std::move(def), {}, {}, {}, std::move(doc)});
}
inline Schema& Schema::choice(std::string name, std::string def, std::vector<std::string> choices,
                              std::string doc) {
    return add({std::move(name), ParamType::choice, std::move(def), {}, {}, std::move(choices), std::move(doc)});
}
inline Schema& Schema::activation(std::string name, std::string def, std::string doc) {
    return add({std::move(name), ParamType::activation, std::move(def), {}, {}, {}, std::move(doc)});
}
inline const ParamSpec* Schema::find(const std::string& name) const {
    for (const auto& s : specs_)
        if (s.name == name) return &s;
    return nullptr;
}

inline Params Params::defaults(const Schema& schema) {
    Params p;
    for (const auto& s : schema.specs()) p.set(s.name, s.default_value);
    return p;
}

inline std::string format_value(const Value& v) {
    struct {
        std::string operator()(bool b) const { return b ? "true" : "false"; }
        std::string operator()(int64_t i) const { return std::to_string(i); }
        std::string operator()(double d) const {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%g", d);
            return buf;
        }
        std::string operator()(const std::string& s) const { return s.empty() ? "\"\"" : s; }
    } f;
    return std::visit(f, v);
}

}  // namespace bp
