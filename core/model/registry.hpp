// The registry: every component of every loaded plugin library, by kind and name.
// Loading follows the contract in sdk/include/backplane/plugin.hpp: the ABI version
// is read before anything else, then the manifest.
#pragma once

#include <backplane/plugin.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace boost::dll {
class shared_library;
}

namespace bp {

// One loaded plugin library.
struct PluginLibrary {
    std::filesystem::path path;
    std::shared_ptr<boost::dll::shared_library> handle;
    const Manifest* manifest = nullptr;
};

// A component and the library it came from.
struct RegisteredComponent {
    const ComponentInfo* info;
    std::shared_ptr<const PluginLibrary> library;
};

class Registry final : public Services {
public:
    // Loads one library and returns it; throws bp::Error naming the file on any
    // failure. Loading the same file twice returns the library loaded first.
    std::shared_ptr<const PluginLibrary> load_library(const std::filesystem::path& path);
    // Loads every *.so in a directory (sorted by name), or the file itself.
    void load_path(const std::filesystem::path& path);
    // The built-in plugin folder next to the executable (which must load whole), then
    // $BACKPLANE_PLUGIN_PATH. A library there that fails to load, or an entry that
    // does not exist, is skipped and recorded in skipped(): one stale library must not
    // stop every command.
    void load_default_paths();
    // "what: why" for each skipped library or entry, for the command to warn about.
    const std::vector<std::string>& skipped() const { return skipped_; }
    // Appended to "unknown component" messages: where components come from, and which
    // libraries were skipped (one of them may have held it).
    std::string plugin_hint() const;

    const RegisteredComponent* find(Kind kind, const std::string& name) const;
    // Like find, but throws "unknown <kind> 'x' (known: a, b, c)", with a suggestion.
    const RegisteredComponent& get(Kind kind, const std::string& name) const;
    std::vector<std::string> names(Kind kind) const;
    const std::map<std::string, RegisteredComponent>& components(Kind kind) const;
    const std::vector<std::shared_ptr<const PluginLibrary>>& libraries() const { return libraries_; }

    // Calls the component's factory. The object keeps its library loaded for as
    // long as it lives. A throwing factory becomes a bp::Error naming the library.
    template <class T>
    std::shared_ptr<T> create(const std::string& name, const Params& params) const;

    std::shared_ptr<const Activation> activation(const std::string& name) const override;

private:
    // One BACKPLANE_PLUGIN_PATH entry: loaded, or recorded in skipped_.
    void load_or_skip(const std::filesystem::path& entry);

    std::vector<std::shared_ptr<const PluginLibrary>> libraries_;
    std::vector<std::string> skipped_;
    std::map<std::string, RegisteredComponent> by_kind_[std::size(kinds)];
};

// Refuses a manifest the core could not use, before any of it is registered: every
// component and parameter name an identifier ([a-z][a-z0-9_]*, what YAML keys and
// --set paths can name), each once; no parameter named like a key the experiment
// reader takes itself (a dataset's `source`, an optimizer's `schedule`, ...); every
// default of its parameter's type, finite, inside its range, among its choices; a
// factory. Throws bp::Error naming the component and the parameter.
void check_manifest(const Manifest& manifest);

// A component's or parameter's name: lowercase letters, digits and _, starting with a
// letter, at most 64 characters.
bool identifier(const std::string& name);

// The keys a model entry takes beside its layer (graph.hpp), so no layer or activation
// may be named like them.
inline const std::vector<std::string> model_entry_keys = {"name", "inputs", "repeat", "trainable", "lr_scale"};

// The folder the built-in plugins are installed in, relative to the executable.
std::filesystem::path builtin_plugin_dir();

// Implemented for every component interface in registry.cpp.
extern template std::shared_ptr<Layer> Registry::create<Layer>(const std::string&, const Params&) const;
extern template std::shared_ptr<Activation> Registry::create<Activation>(const std::string&, const Params&) const;
extern template std::shared_ptr<Loss> Registry::create<Loss>(const std::string&, const Params&) const;
extern template std::shared_ptr<Optimizer> Registry::create<Optimizer>(const std::string&, const Params&) const;
extern template std::shared_ptr<Dataset> Registry::create<Dataset>(const std::string&, const Params&) const;
extern template std::shared_ptr<Schedule> Registry::create<Schedule>(const std::string&, const Params&) const;

}  // namespace bp
