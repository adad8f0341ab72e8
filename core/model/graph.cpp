#include "model/graph.hpp"

#include "text/suggest.hpp"

#include <algorithm>
#include <map>

namespace bp {

std::string ModelNode::label(std::size_t index) const {
    return name.empty() ? std::to_string(index) + "." + component.name : name;
}

namespace {

// "model[3] (dense)", "model[3] 'fc' (dense)": a node in messages.
std::string entry_text(const std::vector<ModelNode>& model, std::size_t i) {
    const ModelNode& node = model[i];
    return "model[" + std::to_string(i) + "] " + (node.name.empty() ? "" : "'" + node.name + "' ") + "(" +
           node.component.name + ")";
}

// The layer (or activation used as one) an entry names, with its parameters.
ComponentConfig read_component(const YamlReader& r, const YAML::Node& name_node, const YAML::Node& args,
                               const std::string& what) {
    ComponentConfig c;
    c.name = r.scalar(name_node, what);
    c.where = r.where(name_node);
    c.kind = Kind::layer;
    const RegisteredComponent* found = r.registry().find(Kind::layer, c.name);
    if (!found && (found = r.registry().find(Kind::activation, c.name))) c.kind = Kind::activation;
    if (!found) {
        const auto layers = r.registry().names(Kind::layer), acts = r.registry().names(Kind::activation);
        std::vector<std::string> all = layers;
        all.insert(all.end(), acts.begin(), acts.end());
        const std::string suggestion = did_you_mean(c.name, all);
        r.fail(name_node, "unknown layer '" + c.name + "'" + suggestion + "; known layers: " + join(layers) +
                              "; activations usable as layers: " + join(acts) +
                              (suggestion.empty() ? r.registry().plugin_hint() : ""));
    }
    c.params = r.params(args, found->info->schema, what + " (" + c.name + ")");
    return c;
}

// One entry: "relu", "dense: {units: 8}", or that mapping with `name:` and `inputs:` beside.
ModelNode read_entry(const YamlReader& r, const YAML::Node& entry, const std::string& what) {
    ModelNode node;
    if (entry.IsScalar()) {
        node.component = read_component(r, entry, YAML::Node(), what);
        return node;
    }
    if (!entry.IsMap()) r.fail(entry, what + " must be a layer name or 'name: {parameters}'");
    // Bind with reset(): yaml-cpp's operator= on a bound node overwrites the node itself.
    std::vector<std::pair<YAML::Node, YAML::Node>> layer_keys;
    for (const auto& kv : entry) {
        if (!kv.first.IsScalar()) r.fail(kv.first, "a key in " + what + " must be a plain name");
        const std::string key = kv.first.Scalar();
        if (key == "name") {
            node.name = r.scalar(kv.second, what + ".name");
            if (!identifier(node.name) || node.name == network_input)
                r.fail(kv.second, what + ".name '" + node.name + "' must be a lowercase identifier ([a-z][a-z0-9_]*, " +
                                      "at most 64 characters) other than '" + network_input +
                                      "', which names the network's input");
        } else if (key == "inputs") {
            if (!kv.second.IsSequence() || kv.second.size() == 0)
                r.fail(kv.second, what + ".inputs must be a non-empty list of entry names, e.g. [conv_a, shortcut]");
            for (const auto& input : kv.second) {
                node.inputs.push_back(r.scalar(input, what + ".inputs entry"));
                node.input_where.push_back(r.where(input));
            }
        } else {
            layer_keys.emplace_back().first.reset(kv.first);
            layer_keys.back().second.reset(kv.second);
        }
    }
    if (layer_keys.size() != 1) {
        std::vector<std::string> names;
        for (const auto& [key, value] : layer_keys) names.push_back(key.Scalar());
        r.fail(entry, what + " must name one layer, e.g. '- dense: {units: 64}', with at most " +
                          join(model_entry_keys) + " beside it" +
                          (names.empty() ? "; it names none" : "; it names " + join(names)));
    }
    node.component = read_component(r, layer_keys[0].first, layer_keys[0].second, what);
    return node;
}

// Resolves every node's input names to indices (the entry before when none are given).
void resolve_inputs(const YamlReader& r, const YAML::Node& list, std::vector<ModelNode>& model) {
    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < model.size(); ++i) {
        const std::string& name = model[i].name;
        if (name.empty()) continue;
        if (const auto [at, added] = index.emplace(name, i); !added)
            r.fail(list[i], "model[" + std::to_string(i) + "] is named '" + name + "', as " +
                                entry_text(model, at->second) + " at " + model[at->second].component.where +
                                " is: names must differ");
    }
    std::vector<std::string> known{network_input};
    for (const auto& [name, i] : index) known.push_back(name);
    for (std::size_t i = 0; i < model.size(); ++i) {
        ModelNode& node = model[i];
        if (node.inputs.empty()) {
            node.sources = {std::ptrdiff_t(i) - 1};
            continue;
        }
        for (std::size_t k = 0; k < node.inputs.size(); ++k) {
            const std::string& input = node.inputs[k];
            if (input == network_input) {
                node.sources.push_back(-1);
            } else if (const auto it = index.find(input); it != index.end()) {
                node.sources.push_back(std::ptrdiff_t(it->second));
            } else {
                throw Error(node.input_where[k] + ": " + entry_text(model, i) + " reads '" + input +
                            "', which no entry is named" + did_you_mean(input, known) + "; names: " + join(known) +
                            " ('" + network_input + "' is the network's input)");
            }
        }
    }
}

// The nodes of a cycle among `left` (nodes a topological sort could not place): each
// reads the one after it, the last reads the first.
std::vector<std::size_t> find_cycle(const std::vector<ModelNode>& model, const std::vector<bool>& left) {
    std::size_t at = std::size_t(std::find(left.begin(), left.end(), true) - left.begin());
    std::vector<std::size_t> path;
    std::vector<std::ptrdiff_t> seen(model.size(), -1);   // position in path
    // Every left node reads at least one left node, so this walk must close a loop.
    while (seen[at] < 0) {
        seen[at] = std::ptrdiff_t(path.size());
        path.push_back(at);
        for (const auto s : model[at].sources)
            if (s >= 0 && left[std::size_t(s)]) {
                at = std::size_t(s);
                break;
            }
    }
    return {path.begin() + seen[at], path.end()};
}

void check_reachable(const YamlReader& r, const YAML::Node& list, const std::vector<ModelNode>& model) {
    std::vector<int> readers(model.size(), 0);
    for (const auto& node : model)
        for (const auto s : node.sources)
            if (s >= 0) ++readers[std::size_t(s)];
    for (std::size_t i = 0; i + 1 < model.size(); ++i)
        if (readers[i] == 0)
            r.fail(list[i], entry_text(model, i) + " is read by no entry, so its output would be lost: name it in a later entry's "
                                "inputs, or remove it (the last entry, " + entry_text(model, model.size() - 1) +
                                ", is the model's output)");
}

}  // namespace

std::vector<std::size_t> execution_order(const std::vector<ModelNode>& model) {
    std::vector<std::size_t> order;
    std::vector<bool> done(model.size(), false);
    // Earliest ready node first: a chain, or a graph whose inputs all come earlier, runs
    // in file order. Quadratic, for models of hundreds of nodes at most.
    for (bool progress = true; progress && order.size() < model.size();) {
        progress = false;
        for (std::size_t i = 0; i < model.size(); ++i) {
            if (done[i]) continue;
            const auto& s = model[i].sources;
            if (std::all_of(s.begin(), s.end(), [&](std::ptrdiff_t j) { return j < 0 || done[std::size_t(j)]; })) {
                done[i] = true;
                order.push_back(i);
                progress = true;
                break;
            }
        }
    }
    return order;
}

std::vector<ModelNode> read_model(const YamlReader& r, const YAML::Node& n) {
    if (!n.IsSequence() || n.size() == 0) r.fail(n, "model must be a non-empty list of layers");
    std::vector<ModelNode> model;
    for (std::size_t i = 0; i < n.size(); ++i) model.push_back(read_entry(r, n[i], "model[" + std::to_string(i) + "]"));
    resolve_inputs(r, n, model);
    if (execution_order(model).size() < model.size()) {
        std::vector<bool> left(model.size(), true);
        for (const auto i : execution_order(model)) left[i] = false;
        // Named in the order data flows (each reads the one before), from the earliest entry.
        auto flow = find_cycle(model, left);
        std::reverse(flow.begin(), flow.end());
        std::rotate(flow.begin(), std::min_element(flow.begin(), flow.end()), flow.end());
        std::string path;
        for (const auto i : flow) path += model[i].label(i) + " -> ";
        r.fail(n[flow.front()], "the model has a cycle: " + path + model[flow.front()].label(flow.front()) +
                                    " (each reads the one before); a node cannot read its own output");
    }
    check_reachable(r, n, model);
    return model;
}

}  // namespace bp
