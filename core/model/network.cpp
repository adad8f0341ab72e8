#include "model/network.hpp"

#include <algorithm>
#include <cstdio>

namespace bp {

std::shared_ptr<Layer> make_layer(const ComponentConfig& c, const Registry& registry) {
    if (c.kind == Kind::activation)
        return std::make_shared<ActivationLayer>(registry.create<Activation>(c.name, c.params));
    return registry.create<Layer>(c.name, c.params);
}

Network::Network(const std::vector<ModelNode>& model, const Shape& input, uint64_t seed,
                 const Registry& registry)
    : input_(input) {
    const Random init = Random(seed).derive("init");
    std::vector<std::ptrdiff_t> position(model.size(), -1);   // entry -> index in layers_
    for (const std::size_t i : execution_order(model)) {
        const ModelNode& node = model[i];
        const ComponentConfig& c = node.component;
        NetworkLayer l{node.label(i), i, nullptr, {}, {}, {}, node.trainable, float(node.lr_scale)};
        std::string reads;   // "[8, 14, 14] from conv_a, [16, 14, 14] from shortcut"
        for (const auto& read : node.inputs) {
            const std::ptrdiff_t at = read.source < 0 ? -1 : position[std::size_t(read.source)];
            l.sources.push_back(at);
            l.inputs.push_back(at < 0 ? input : layers_[std::size_t(at)].output);
            reads += (reads.empty() ? "" : ", ") + l.inputs.back().str() + " from " +
                     (at < 0 ? std::string(network_input) : layers_[std::size_t(at)].label);
        }
        const std::string what = c.where + ": " + node.what;
        try {
            l.layer = make_layer(c, registry);
            l.output = l.layer->build_merge(l.inputs, init.derive(i));
        } catch (const Error& e) {
            const bool above = node.inputs.size() == 1 && node.inputs[0].name.empty();
            throw Error(what + (node.inputs.size() > 1 ? " with inputs " : " with input ") +
                        (above ? l.inputs[0].str() : reads) + ": " + e.what());
        }
        if (l.output.size() <= 0) throw Error(what + " produced the empty shape " + l.output.str());
        position[i] = std::ptrdiff_t(layers_.size());
        layers_.push_back(std::move(l));
    }
}

bool Network::is_graph() const {
    for (std::size_t i = 0; i < layers_.size(); ++i)
        if (layers_[i].sources != std::vector<std::ptrdiff_t>{std::ptrdiff_t(i) - 1}) return true;
    return false;
}

int64_t Network::parameter_count() const {
    int64_t n = 0;
    for (const auto& p : parameters()) n += p.value->size();
    return n;
}

std::vector<Network::Parameter> Network::parameters() const {
    std::vector<Parameter> out;
    for (const auto& l : layers_)
        for (auto& t : l.layer->parameters()) out.push_back({l.label + "." + t.name, &t.value, &l, t.role});
    return out;
}

std::vector<Network::Parameter> Network::buffers() const {
    std::vector<Parameter> out;
    for (const auto& l : layers_)
        for (auto& t : l.layer->buffers()) out.push_back({l.label + "." + t.name, &t.value, &l, t.role});
    return out;
}

std::string Network::summary() const {
    // A graph's table says what each node reads; a chain's reads the row above.
    const bool graph = is_graph();
    int width = 22;   // the label column: as wide as the longest (a block's names are long)
    for (const auto& l : layers_) width = std::max(width, int(std::min<std::size_t>(l.label.size(), 120)));
    std::string out;
    char line[512];
    auto row = [&](const std::string& label, const std::string& shape, const std::string& count,
                   const std::string& reads) {
        std::snprintf(line, sizeof line, "  %-*s %-18s %12s", width, label.c_str(), shape.c_str(), count.c_str());
        out += line;
        out += graph && !reads.empty() ? "   " + reads + "\n" : "\n";
    };
    row("layer", "output", "parameters", "reads");
    row("input", input().str(), "", "");
    for (const auto& l : layers_) {
        int64_t n = 0;
        for (const auto& t : l.layer->parameters()) n += t.value.size();
        std::string reads;
        for (const auto s : l.sources)
            reads += (reads.empty() ? "" : ", ") + (s < 0 ? std::string(network_input) : layers_[std::size_t(s)].label);
        row(l.label, l.output.str(), std::to_string(n), reads);
    }
    row("total", "", std::to_string(parameter_count()), "");
    return out;
}

}  // namespace bp
