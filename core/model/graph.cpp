#include "model/graph.hpp"

#include "text/suggest.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <queue>

namespace bp {

std::string ModelNode::label(std::size_t index) const {
    return name.empty() ? std::to_string(index) + "." + component.name : name;
}

namespace {

// Limits that keep a runaway file (blocks nested and repeated) from exhausting memory.
constexpr int64_t max_repeat = 1000;
constexpr std::size_t max_nodes = 100000;
constexpr std::size_t max_depth = 32;

// A block: its parameters' defaults (values in the file) and its model.
struct Block {
    std::map<std::string, YAML::Node> defaults;
    YAML::Node model;
};
using Blocks = std::map<std::string, Block>;
using Arguments = std::map<std::string, YAML::Node>;

// A name inside blocks may be qualified: identifiers and numbers joined by dots.
bool qualified_name(const std::string& name) {
    const auto dot = name.find('.');
    if (!identifier(name.substr(0, dot))) return false;
    if (dot == std::string::npos) return true;
    return std::all_of(name.begin() + std::ptrdiff_t(dot), name.end(),
                       [](char c) { return c == '.' || c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }) &&
           name.find("..") == std::string::npos && name.back() != '.';
}

Blocks read_blocks(const YamlReader& r, const YAML::Node& n) {
    Blocks blocks;
    if (!n) return blocks;
    if (!n.IsMap()) r.fail(n, "blocks must be a mapping of block names to { parameters: {...}, model: [...] }");
    for (const auto& kv : n) {
        const std::string name = r.scalar(kv.first, "a block's name");
        if (!identifier(name) || name == network_input)
            r.fail(kv.first, "block name '" + name + "' must be a lowercase identifier ([a-z][a-z0-9_]*)");
        if (std::find(model_entry_keys.begin(), model_entry_keys.end(), name) != model_entry_keys.end())
            r.fail(kv.first, "block '" + name + "' has the name of a model entry's own key (" + join(model_entry_keys) +
                                 "); name the block otherwise");
        if (r.registry().find(Kind::layer, name) || r.registry().find(Kind::activation, name))
            r.fail(kv.first, "block '" + name + "' has the name of a layer: a model entry '" + name +
                                 "' could not say which it means; name the block otherwise");
        const YAML::Node def = kv.second;
        if (!def.IsMap()) r.fail(def, "block '" + name + "' must be a mapping with model: and, optionally, parameters:");
        r.check_keys(def, {"parameters", "model"}, "block '" + name + "'");
        Block& b = blocks[name];
        if (const YAML::Node params = def["parameters"]) {
            if (!params.IsMap()) r.fail(params, "blocks." + name + ".parameters must map each parameter to its default");
            for (const auto& p : params) {
                const std::string key = r.scalar(p.first, "a block parameter's name");
                if (!identifier(key)) r.fail(p.first, "block parameter '" + key + "' must be a lowercase identifier");
                b.defaults[key].reset(p.second);
            }
        }
        b.model.reset(r.require(def, "model", "block '" + name + "'"));
        if (!b.model.IsSequence() || b.model.size() == 0)
            r.fail(b.model, "blocks." + name + ".model must be a non-empty list of layers");
    }
    return blocks;
}

// Where an entry stands while it is expanded.
struct Scope {
    std::string prefix;                   // "stage2.block1." inside a use, "" at the top
    bool trainable = true;                // the uses around it: all trainable?
    double lr_scale = 1;                  // and the product of their lr_scale
    std::string block;                    // the block being expanded, "" at the top
    const Arguments* arguments = nullptr; // its parameters' values, for "$name"
    ModelInput input;                     // what `input` reads here
    std::vector<std::string> stack;       // the blocks being expanded, outermost first
};

class Expander {
public:
    Expander(YamlReader& r, Blocks blocks) : r_(r), blocks_(std::move(blocks)) {}

    // Expands the entries of `list` into nodes_; returns what the last one outputs.
    ModelInput expand(const YAML::Node& list, const Scope& scope) {
        ModelInput above = scope.input;
        for (std::size_t k = 0; k < list.size(); ++k) above = entry(list[k], k, scope, above);
        return above;
    }

    std::vector<ModelNode> take() { return std::move(nodes_); }
    const std::map<std::string, std::ptrdiff_t>& uses() const { return uses_; }

private:
    // One entry: a layer (one node) or a block's use (its nodes); returns its output.
    ModelInput entry(const YAML::Node& entry, std::size_t k, const Scope& scope, const ModelInput& above) {
        const std::string where_in = scope.block.empty() ? "model[" + std::to_string(k) + "]"
                                                         : "blocks." + scope.block + ".model[" + std::to_string(k) + "]";
        // Bind with reset(): yaml-cpp's operator= on a bound node overwrites the node itself.
        // A default Node is a defined null, so what was given is kept in flags.
        YAML::Node key, args, name_node, inputs_node, repeat_node, trainable_node, lr_scale_node;
        bool has_name = false, has_inputs = false, has_repeat = false, has_trainable = false, has_lr_scale = false;
        key.reset(entry);
        if (entry.IsMap()) {
            std::vector<std::pair<YAML::Node, YAML::Node>> layer_keys;
            for (const auto& kv : entry) {
                if (!kv.first.IsScalar()) r_.fail(kv.first, "a key in " + where_in + " must be a plain name");
                const std::string word = kv.first.Scalar();
                if (word == "name") name_node.reset(kv.second), has_name = true;
                else if (word == "inputs") inputs_node.reset(kv.second), has_inputs = true;
                else if (word == "repeat") repeat_node.reset(kv.second), has_repeat = true;
                else if (word == "trainable") trainable_node.reset(kv.second), has_trainable = true;
                else if (word == "lr_scale") lr_scale_node.reset(kv.second), has_lr_scale = true;
                else {
                    layer_keys.emplace_back().first.reset(kv.first);
                    layer_keys.back().second.reset(kv.second);
                }
            }
            if (layer_keys.size() != 1) {
                std::vector<std::string> names;
                for (const auto& [word, value] : layer_keys) names.push_back(word.Scalar());
                r_.fail(entry, where_in + " must name one layer or block, e.g. '- dense: {units: 64}', with at most " +
                                   join(model_entry_keys) + " beside it" +
                                   (names.empty() ? "; it names none" : "; it names " + join(names)));
            }
            key.reset(layer_keys[0].first);
            args.reset(layer_keys[0].second);
        } else if (!entry.IsScalar()) {
            r_.fail(entry, where_in + " must be a layer name or 'name: {parameters}'");
        }
        const std::string component = r_.scalar(key, where_in);
        std::string name;
        if (has_name) {
            name = r_.scalar(name_node, where_in + ".name");
            if (!qualified_name(name) || name == network_input)
                r_.fail(name_node, where_in + ".name '" + name + "' must be a lowercase identifier ([a-z][a-z0-9_]*, " +
                                       "at most 64 characters; or such names joined by dots) other than '" +
                                       network_input + "', which names the network's input");
        }
        std::vector<ModelInput> inputs;
        if (has_inputs) {
            if (!inputs_node.IsSequence() || inputs_node.size() == 0)
                r_.fail(inputs_node, where_in + ".inputs must be a non-empty list of entry names, e.g. [conv_a, shortcut]");
            for (const auto& input : inputs_node) {
                const std::string word = r_.scalar(input, where_in + ".inputs entry");
                if (word.empty()) r_.fail(input, where_in + ".inputs: an empty name names no entry");
                ModelInput in = word == network_input ? scope.input : ModelInput{scope.prefix + word, scope.prefix, -1, ""};
                // A use's input read by its name keeps the place that name was written.
                if (in.name.empty() || word != network_input) in.where = r_.where(input);
                inputs.push_back(in);
            }
        }
        // What this entry adds to the fine-tuning settings around it.
        Scope tuned = scope;
        if (has_trainable) {
            const ParamSpec spec{"trainable", ParamType::boolean, true, {}, {}, {}, ""};
            tuned.trainable = scope.trainable && std::get<bool>(r_.value(spec, bind(trainable_node, scope), where_in + ".trainable"));
        }
        if (has_lr_scale) {
            const ParamSpec spec{"lr_scale", ParamType::number, 1.0, 0.0, 1e3, {}, ""};
            tuned.lr_scale = scope.lr_scale * std::get<double>(r_.value(spec, bind(lr_scale_node, scope), where_in + ".lr_scale"));
        }
        if (const auto b = blocks_.find(component); b != blocks_.end())
            return use(b->first, b->second, key, args, name, inputs, has_repeat ? &repeat_node : nullptr, k, tuned,
                       above, where_in);
        if (has_repeat) r_.fail(repeat_node, where_in + ".repeat repeats a block; '" + component + "' is a layer");

        ModelNode node;
        node.component = read_component(key, bind_all(args, scope), where_in);
        node.name = !name.empty() ? scope.prefix + name
                    : scope.prefix.empty() ? ""
                                           : scope.prefix + std::to_string(k) + "." + component;
        node.trainable = tuned.trainable;
        node.lr_scale = tuned.lr_scale;
        node.inputs = inputs.empty() ? std::vector<ModelInput>{above} : inputs;
        if (inputs.empty() && node.inputs[0].name.empty()) node.inputs[0].where = node.component.where;
        node.what = scope.block.empty() ? "model[" + std::to_string(k) + "] " + (name.empty() ? "" : "'" + name + "' ") +
                                              "(" + component + ")"
                                        : "'" + node.name + "' (" + component + " in block " + scope.block + ")";
        if (nodes_.size() >= max_nodes)
            r_.fail(key, "the model expands to more than " + std::to_string(max_nodes) + " layers");
        nodes_.push_back(std::move(node));
        return {"", "", std::ptrdiff_t(nodes_.size() - 1), ""};
    }

    // The nodes of a block's use, each repeat reading the one before.
    ModelInput use(const std::string& block, const Block& def, const YAML::Node& key, const YAML::Node& args,
                   const std::string& name, const std::vector<ModelInput>& inputs, const YAML::Node* repeat_node,
                   std::size_t k, const Scope& scope, const ModelInput& above, const std::string& where_in) {
        if (std::find(scope.stack.begin(), scope.stack.end(), block) != scope.stack.end())
            r_.fail(key, "block '" + block + "' uses itself: " + join(scope.stack, " -> ") + " -> " + block);
        if (scope.stack.size() >= max_depth)
            r_.fail(key, "blocks nest more than " + std::to_string(max_depth) + " deep here: " + join(scope.stack, " -> "));
        if (inputs.size() > 1)
            r_.fail(key, where_in + " uses block '" + block + "', which reads one input (its 'input'); it is given " +
                             std::to_string(inputs.size()));
        Arguments arguments = def.defaults;
        if (args && !args.IsNull()) {
            if (!args.IsMap()) r_.fail(args, where_in + " (block " + block + ") takes a mapping of its parameters");
            std::vector<std::string> known;
            for (const auto& [p, value] : def.defaults) known.push_back(p);
            for (const auto& kv : args) {
                const std::string p = r_.scalar(kv.first, "a parameter of block " + block);
                if (!def.defaults.count(p))
                    r_.fail(kv.first, "block '" + block + "' has no parameter '" + p + "'" + did_you_mean(p, known) +
                                          (known.empty() ? "; it takes none" : "; it takes " + join(known)));
                arguments[p].reset(bind(kv.second, scope));
            }
        }
        const int64_t repeat = repeat_node ? r_.integer(bind(*repeat_node, scope), where_in + ".repeat", 1, max_repeat) : 1;
        // An unnamed use is called after its block and place ("basic_3"): its nodes'
        // names must start with a letter to be read back from config.yaml.
        const std::string use_name = scope.prefix + (name.empty() ? block + "_" + std::to_string(k) : name);
        Scope inner{"", scope.trainable, scope.lr_scale, block, &arguments, inputs.empty() ? above : inputs[0],
                    scope.stack};
        inner.stack.push_back(block);
        for (int64_t c = 1; c <= repeat; ++c) {
            const std::string copy = repeat > 1 ? use_name + ".block" + std::to_string(c) : use_name;
            inner.prefix = copy + ".";
            inner.input = expand(def.model, inner);
            uses_[copy] = inner.input.source;
        }
        uses_[use_name] = inner.input.source;
        return inner.input;
    }

    // `n`, or the value of the block parameter it names ("$filters") inside a block.
    YAML::Node bind(const YAML::Node& n, const Scope& scope) {
        if (!scope.arguments || !n.IsScalar() || n.Scalar().empty() || n.Scalar()[0] != '$') return n;
        const std::string p = n.Scalar().substr(1);
        const auto it = scope.arguments->find(p);
        if (it == scope.arguments->end()) {
            std::vector<std::string> known;
            for (const auto& [q, value] : *scope.arguments) known.push_back("$" + q);
            r_.fail(n, "block '" + scope.block + "' has no parameter '" + p + "'" + did_you_mean("$" + p, known) +
                           (known.empty() ? "; it declares none" : "; it declares " + join(known)));
        }
        return it->second;
    }

    // A layer's parameter mapping with every "$name" value bound (the same nodes
    // otherwise, so messages keep their places).
    YAML::Node bind_all(const YAML::Node& args, const Scope& scope) {
        if (!scope.arguments || !args.IsMap()) return args;
        YAML::Node bound(YAML::NodeType::Map);
        r_.place(bound, r_.where(args));
        for (const auto& kv : args) bound.force_insert(kv.first, bind(kv.second, scope));
        return bound;
    }

    // The layer (or activation used as one) an entry names, with its parameters.
    ComponentConfig read_component(const YAML::Node& name_node, const YAML::Node& args, const std::string& what) {
        ComponentConfig c;
        c.name = r_.scalar(name_node, what);
        c.where = r_.where(name_node);
        c.kind = Kind::layer;
        const RegisteredComponent* found = r_.registry().find(Kind::layer, c.name);
        if (!found && (found = r_.registry().find(Kind::activation, c.name))) c.kind = Kind::activation;
        if (!found) {
            const auto layers = r_.registry().names(Kind::layer), acts = r_.registry().names(Kind::activation);
            std::vector<std::string> all = layers;
            all.insert(all.end(), acts.begin(), acts.end());
            std::vector<std::string> block_names;
            for (const auto& [b, def] : blocks_) block_names.push_back(b), all.push_back(b);
            const std::string suggestion = did_you_mean(c.name, all);
            r_.fail(name_node, "unknown layer '" + c.name + "'" + suggestion + "; known layers: " + join(layers) +
                                   "; activations usable as layers: " + join(acts) +
                                   (block_names.empty() ? "" : "; blocks: " + join(block_names)) +
                                   (suggestion.empty() ? r_.registry().plugin_hint() : ""));
        }
        c.params = r_.params(args, found->info->schema, what + " (" + c.name + ")");
        return c;
    }

    YamlReader& r_;
    const Blocks blocks_;
    std::vector<ModelNode> nodes_;
    std::map<std::string, std::ptrdiff_t> uses_;   // a block use's name -> its output node
};

// Resolves every input written as a name: a node's name, a block use's name (its
// output), or an unnamed entry's label ("3.dense").
void resolve_inputs(std::vector<ModelNode>& model, const std::map<std::string, std::ptrdiff_t>& uses) {
    std::map<std::string, std::ptrdiff_t> index(uses.begin(), uses.end());
    for (std::size_t i = 0; i < model.size(); ++i) {
        const std::string label = model[i].label(i);
        if (const auto [at, added] = index.emplace(label, std::ptrdiff_t(i)); !added && !model[i].name.empty())
            throw Error(model[i].component.where + ": " + model[i].what + ": the name '" + label + "' is taken by " +
                        (uses.count(label) ? std::string("a use of a block")
                                           : model[std::size_t(at->second)].what + " at " +
                                                 model[std::size_t(at->second)].component.where) +
                        "; names must differ");
    }
    for (auto& node : model)
        for (auto& input : node.inputs) {
            if (input.name.empty()) continue;   // resolved as it was read
            const auto it = index.find(input.name);
            if (it != index.end()) {
                input.source = it->second;
                continue;
            }
            // The names it could have meant, as they are written where it stands: in its
            // scope, a plain name ("conv_a"), or inside a block an unnamed entry's label ("1.relu").
            std::vector<std::string> known{network_input};
            for (const auto& [name, i] : index) {
                if (name.size() <= input.scope.size() || name.compare(0, input.scope.size(), input.scope) != 0) continue;
                const std::string local = name.substr(input.scope.size());
                const bool plain = local.find('.') == std::string::npos && std::isalpha(static_cast<unsigned char>(local[0]));
                const bool label = !input.scope.empty() && std::isdigit(static_cast<unsigned char>(local[0])) &&
                                   local.find('.') == local.rfind('.');
                if (plain || label) known.push_back(local);
            }
            const std::string written = input.name.substr(input.scope.size());
            throw Error(input.where + ": " + node.what + " reads '" + written + "', which no entry " +
                        (input.scope.empty() ? "is named" : "of its block is named") + did_you_mean(written, known) +
                        "; names: " + join(known) + " ('" + network_input + "' is " +
                        (input.scope.empty() ? "the network's input)" : "the block's input)"));
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
        for (const auto& input : model[at].inputs)
            if (input.source >= 0 && left[std::size_t(input.source)]) {
                at = std::size_t(input.source);
                break;
            }
    }
    return {path.begin() + seen[at], path.end()};
}

void check_acyclic(const std::vector<ModelNode>& model) {
    const auto order = execution_order(model);
    if (order.size() == model.size()) return;
    std::vector<bool> left(model.size(), true);
    for (const auto i : order) left[i] = false;
    // Named in the order data flows (each reads the one before), from the earliest entry.
    auto flow = find_cycle(model, left);
    std::reverse(flow.begin(), flow.end());
    std::rotate(flow.begin(), std::min_element(flow.begin(), flow.end()), flow.end());
    std::string path;
    for (const auto i : flow) path += model[i].label(i) + " -> ";
    throw Error(model[flow.front()].component.where + ": the model has a cycle: " + path +
                model[flow.front()].label(flow.front()) + " (each reads the one before); a node cannot read its own output");
}

void check_reachable(const std::vector<ModelNode>& model) {
    std::vector<int> readers(model.size(), 0);
    for (const auto& node : model)
        for (const auto& input : node.inputs)
            if (input.source >= 0) ++readers[std::size_t(input.source)];
    for (std::size_t i = 0; i + 1 < model.size(); ++i)
        if (readers[i] == 0)
            throw Error(model[i].component.where + ": " + model[i].what +
                        " is read by no entry, so its output would be lost: name it in a later entry's inputs, or "
                        "remove it (the last entry, " + model.back().what + ", is the model's output)");
}

}  // namespace

std::vector<std::size_t> execution_order(const std::vector<ModelNode>& model) {
    // Kahn's topological sort taking the earliest ready node first: a chain, or a graph
    // whose inputs all come earlier, runs in file order.
    std::vector<std::size_t> waiting(model.size(), 0);           // inputs not placed yet
    std::vector<std::vector<std::size_t>> readers(model.size());
    for (std::size_t i = 0; i < model.size(); ++i)
        for (const auto& input : model[i].inputs)
            if (input.source >= 0) ++waiting[i], readers[std::size_t(input.source)].push_back(i);
    std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> ready;
    for (std::size_t i = 0; i < model.size(); ++i)
        if (waiting[i] == 0) ready.push(i);
    std::vector<std::size_t> order;
    while (!ready.empty()) {
        const std::size_t i = ready.top();
        ready.pop();
        order.push_back(i);
        for (const auto r : readers[i])
            if (--waiting[r] == 0) ready.push(r);
    }
    return order;
}

std::vector<ModelNode> read_model(YamlReader& r, const YAML::Node& model, const YAML::Node& blocks) {
    if (!model.IsSequence() || model.size() == 0) r.fail(model, "model must be a non-empty list of layers");
    Expander expander(r, read_blocks(r, blocks));
    expander.expand(model, Scope{});
    std::vector<ModelNode> nodes = expander.take();
    resolve_inputs(nodes, expander.uses());
    check_acyclic(nodes);
    check_reachable(nodes);
    return nodes;
}

}  // namespace bp
