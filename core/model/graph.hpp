// The model as a graph: each `model:` entry is a node that reads the entry before it,
// or the entries its `inputs:` name. Read and checked here, before any layer is built:
// every name known, no cycle, every node read by another (the last entry, the output,
// aside).
#pragma once

#include "model/yaml_reader.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace bp {

// What `inputs:` calls the network's own input.
inline constexpr const char* network_input = "input";

struct ModelNode {
    ComponentConfig component;
    std::string name;                 // `name:`, or "" when none was given
    std::vector<std::string> inputs;  // `inputs:` as written; empty: the entry before
    // What each input reads: an index into the model, or -1 for the network's input.
    std::vector<std::ptrdiff_t> sources;
    std::vector<std::string> input_where;   // where each input was written, for messages

    // How parameters, messages and the summary name the node: its name, or "2.dense".
    std::string label(std::size_t index) const;
};

// Reads `model:`: each entry "relu", "dense: {units: 8}", or a mapping with the layer's
// key and `name:` / `inputs:`. Throws bp::Error at file:line:column for an unknown layer,
// a name given twice, an input no entry has (with a suggestion), a cycle (its nodes
// named), or an entry nothing reads.
std::vector<ModelNode> read_model(const YamlReader& r, const YAML::Node& n);

// The nodes in an order where each comes after what it reads: the file's order when
// that already is one, else the earliest ready node first. The graph has no cycle
// (read_model checked).
std::vector<std::size_t> execution_order(const std::vector<ModelNode>& model);

}  // namespace bp
