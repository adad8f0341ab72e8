#include "model/network.hpp"

#include <cstdio>

namespace bp {

std::shared_ptr<Layer> make_layer(const ComponentConfig& c, const Registry& registry) {
    if (c.kind == Kind::activation)
        return std::make_shared<ActivationLayer>(registry.create<Activation>(c.name, c.params));
    return registry.create<Layer>(c.name, c.params);
}

Network::Network(const std::vector<ComponentConfig>& model, const Shape& input, uint64_t seed,
                 const Registry& registry) {
    const Random init = Random(seed).derive("init");
    Shape shape = input;
    for (std::size_t i = 0; i < model.size(); ++i) {
        const ComponentConfig& c = model[i];
        NetworkLayer l{std::to_string(i) + "." + c.name, nullptr, shape, {}};
        try {
            l.layer = make_layer(c, registry);
            l.output = l.layer->build(shape, init.derive(i));
        } catch (const Error& e) {
            throw Error(c.where + ": model[" + std::to_string(i) + "] (" + c.name + ") with input " + shape.str() +
                        ": " + e.what());
        }
        if (l.output.size() <= 0)
            throw Error(c.where + ": model[" + std::to_string(i) + "] (" + c.name + ") produced the empty shape " +
                        l.output.str());
        shape = l.output;
        layers_.push_back(std::move(l));
    }
}

int64_t Network::parameter_count() const {
    int64_t n = 0;
    for (const auto& p : parameters()) n += p.value->size();
    return n;
}

std::vector<Network::Parameter> Network::parameters() const {
    std::vector<Parameter> out;
    for (const auto& l : layers_)
        for (auto& t : l.layer->parameters()) out.push_back({l.label + "." + t.name, &t.value});
    return out;
}

std::vector<Network::Parameter> Network::buffers() const {
    std::vector<Parameter> out;
    for (const auto& l : layers_)
        for (auto& t : l.layer->buffers()) out.push_back({l.label + "." + t.name, &t.value});
    return out;
}

std::string Network::summary() const {
    std::string out;
    char line[160];
    std::snprintf(line, sizeof line, "  %-22s %-18s %12s\n", "layer", "output", "parameters");
    out += line;
    std::snprintf(line, sizeof line, "  %-22s %-18s %12s\n", "input", input().str().c_str(), "");
    out += line;
    for (const auto& l : layers_) {
        int64_t n = 0;
        for (const auto& t : l.layer->parameters()) n += t.value.size();
        std::snprintf(line, sizeof line, "  %-22s %-18s %12lld\n", l.label.c_str(), l.output.str().c_str(),
                      static_cast<long long>(n));
        out += line;
    }
    std::snprintf(line, sizeof line, "  %-22s %-18s %12lld\n", "total", "", static_cast<long long>(parameter_count()));
    return out + line;
}

}  // namespace bp
