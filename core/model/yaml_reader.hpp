// Reads YAML that a person wrote, checking it against schemas: every key known,
// every value typed and in range, every component found, every error one message
// starting with where it stands (file:line:column, or the --set that put it there).
#pragma once

#include "model/registry.hpp"

#include <backplane/params.hpp>
#include <backplane/plugin.hpp>

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <vector>

namespace bp {

// A component named in the file, its parameters validated, every schema entry present.
struct ComponentConfig {
    Kind kind = Kind::layer;
    std::string name;     // registry name
    Params params;
    std::string where;    // "file.yaml:12:5", for messages about this component
};

class YamlReader {
public:
    YamlReader(std::filesystem::path file, Registry& registry) : file_(std::move(file)), registry_(registry) {}

    const std::filesystem::path& file() const { return file_; }
    Registry& registry() const { return registry_; }

    // parse_yaml, for this reader's file.
    YAML::Node parse(const std::string& text) const;

    // "train.epochs=3" or "model.0.units=64": the value is YAML, so lists and maps work too.
    // `origin` says where the assignment came from, in front of it in messages: "--set", or
    // "suite.yaml:14:11: set" for a suite workload's set: entry.
    void apply_override(YAML::Node& root, const std::string& assignment, const std::string& origin = "--set");
    // The value of "KEY=VALUE", checked as parse_yaml checks a document, placed at the override.
    YAML::Node override_value(const std::string& assignment, const std::string& origin = "--set");

    // Where `n` stands: "file:line:column", or what put it there (--set, a variant).
    std::string where(const YAML::Node& n) const;
    // Records that `node`, made by the program rather than read, stands at `where`.
    void place(const YAML::Node& node, const std::string& where);
    // The same for `node` and everything in it (a document checked by parse_yaml).
    void place_all(const YAML::Node& node, const std::string& where);
    // `node` and everything in it came from another document (a suite's): each
    // stands where `source` says it does.
    void place_from(const YAML::Node& node, const YamlReader& source);
    [[noreturn]] void fail(const YAML::Node& n, const std::string& msg) const;
    YAML::Node require(const YAML::Node& map, const std::string& key, const std::string& section) const;
    void check_keys(const YAML::Node& map, const std::vector<std::string>& allowed, const std::string& section) const;

    std::string scalar(const YAML::Node& n, const std::string& what) const;
    double real(const YAML::Node& n, const std::string& what) const;
    int64_t integer(const YAML::Node& n, const std::string& what, double min, double max) const;
    // One value checked against its schema entry.
    Value value(const ParamSpec& spec, const YAML::Node& n, const std::string& what) const;
    // A mapping checked against a schema (plus `extra` keys the caller reads itself), defaults filled.
    Params params(const YAML::Node& map, const Schema& schema, const std::string& section,
                  const std::vector<std::string>& extra = {}) const;

    const ComponentInfo& lookup(const YAML::Node& at, Kind kind, const std::string& name) const;
    // "loss: mse" or "optimizer: {name: adam, lr: 0.01}"; `extra`: keys the caller reads itself.
    ComponentConfig named_component(const YAML::Node& n, Kind kind, const std::string& section,
                                    const std::vector<std::string>& extra = {}) const;

private:
    // A node the program made (an override, a merged key): errors about it name where it came from.
    struct Override {
        YAML::Node node;
        std::string text;
    };
    std::filesystem::path file_;
    Registry& registry_;
    std::vector<Override> overrides_;
};

// `text` parsed, refused when it is not YAML, gives a key twice in a mapping (yaml-cpp would
// keep the first and drop the second without a word), expands past 100,000 values through
// aliases or nests deeper than 64 (an alias to a mapping inside itself): every later walk
// of the tree can then trust it. Errors start with `file`'s place.
YAML::Node parse_yaml(const std::string& text, const std::filesystem::path& file);

// "'x' (a scalar)", "a list", "a mapping": how a value appears in messages.
std::string shown(const YAML::Node& n);

// `over` merged into `base`: maps key by key, anything else replaced. A map naming a
// different component (`name:`) replaces the base's whole, so no parameter of the old
// component leaks into the new one (the optimizer's `schedule:` stays unless `over`
// sets its own). Nodes of `over` are shared, not copied, so they keep their place in
// the file for messages; a key `over` adds is placed at its key. What a comparison
// variant and a suite's quick mode do.
void merge_over(YamlReader& r, YAML::Node base, const YAML::Node& over);

}  // namespace bp
