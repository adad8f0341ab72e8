// The model as a graph: each `model:` entry is a node that reads the entry before it,
// or the entries its `inputs:` name. Entries that use a block (`blocks:`, a named,
// parameterised sub-graph) are expanded in place, so what comes out is one flat list of
// layers. Read and checked here, before any layer is built: every name known, no cycle,
// every node read by another (the last entry, the output, aside).
#pragma once

#include "model/yaml_reader.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace bp {

// What `inputs:` calls the network's own input (inside a block: the block's input).
inline constexpr const char* network_input = "input";

// One input of a node: what it reads, once resolved.
struct ModelInput {
    std::string name;             // as written, qualified inside a block; "" for "the entry above"
    std::string scope;            // the qualification: "stage2.block1." inside a block's use, else ""
    std::ptrdiff_t source = -1;   // an index into the model, or -1 for the network's input
    std::string where;            // where it was written (the entry's own place when implicit)
};

struct ModelNode {
    ComponentConfig component;
    // `name:`; inside a block qualified by the use ("stage2.block1.conv_a"), and given to
    // unnamed entries there too ("stage2.block1.2.batch_norm"); "" for an unnamed entry
    // outside any block.
    std::string name;
    std::vector<ModelInput> inputs;
    std::string what;             // how messages call it: "model[3] 'fc' (dense)"
    // Fine-tuning: `trainable: false` keeps its parameters as they are; `lr_scale`
    // multiplies the optimizer's rate for them. Set on a block's use, they apply to
    // every layer of it (lr_scale multiplying any set inside).
    bool trainable = true;
    double lr_scale = 1;

    // How parameters, messages and the summary name the node: its name, or "2.dense".
    std::string label(std::size_t index) const;
};

// Reads `model:`, expanding the uses of `blocks:`. An entry is "relu", "dense: {units: 8}",
// or a mapping with the layer's (or block's) key and `name:` / `inputs:` / `trainable:` /
// `lr_scale:` (and `repeat:` for a block). Throws bp::Error at file:line:column for an unknown layer or block, a
// name given twice, an input no entry has (with a suggestion), a cycle (its nodes named),
// an entry nothing reads, a block parameter that is not declared, a block that uses itself.
std::vector<ModelNode> read_model(YamlReader& r, const YAML::Node& model, const YAML::Node& blocks);

// The nodes in an order where each comes after what it reads: the file's order when
// that already is one, else the earliest ready node first. Shorter than the model when
// it has a cycle.
std::vector<std::size_t> execution_order(const std::vector<ModelNode>& model);

}  // namespace bp
