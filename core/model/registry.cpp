#include "model/registry.hpp"

#include "text/suggest.hpp"

#define BOOST_DLL_USE_STD_FS
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace fs = std::filesystem;

namespace bp {

namespace {

std::string plugin_error(const fs::path& path, const std::string& what) {
    return "plugin " + path.string() + ": " + what;
}

std::string plural(Kind kind) { return kind == Kind::loss ? "losses" : std::string(to_string(kind)) + "s"; }

// The *.so files in a folder, sorted by name so the loading order is the same everywhere.
std::vector<fs::path> library_files(const fs::path& dir) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir))
        if (entry.path().extension() == ".so" && !fs::is_directory(entry.path())) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace

bool identifier(const std::string& name) {
    if (name.empty() || name.size() > 64 || !(name[0] >= 'a' && name[0] <= 'z')) return false;
    return std::all_of(name.begin(), name.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

namespace {

// Keys the experiment reader reads beside a component's parameters.
std::vector<std::string> reserved_keys(Kind kind) {
    switch (kind) {
        case Kind::dataset: return {"source", "validation_split", "augment"};
        case Kind::optimizer: return {"name", "schedule"};
        case Kind::schedule: return {"name", "warmup", "per_step"};
        case Kind::loss: return {"name"};
        default: return {};
    }
}

// "" when `spec` can be used, else what is wrong with it.
std::string spec_problem(const ParamSpec& spec) {
    const std::size_t want = spec.type == ParamType::boolean   ? 0
                             : spec.type == ParamType::integer ? 1
                             : spec.type == ParamType::number  ? 2
                                                               : 3;
    if (spec.default_value.index() != want) return std::string("its default is not of its type (") + to_string(spec.type) + ")";
    if (spec.type == ParamType::integer || spec.type == ParamType::number) {
        const double d = spec.type == ParamType::integer ? double(std::get<int64_t>(spec.default_value))
                                                         : std::get<double>(spec.default_value);
        if (!spec.min || !spec.max || !std::isfinite(*spec.min) || !std::isfinite(*spec.max) || *spec.min > *spec.max)
            return "its range is not a finite [min, max]";
        if (!std::isfinite(d) || d < *spec.min || d > *spec.max) return "its default " + format_value(spec.default_value) + " is outside its range";
    }
    if (spec.type == ParamType::choice) {
        if (spec.choices.empty()) return "it has no choices";
        if (std::find(spec.choices.begin(), spec.choices.end(), std::get<std::string>(spec.default_value)) == spec.choices.end())
            return "its default '" + std::get<std::string>(spec.default_value) + "' is not one of its choices";
    }
    return "";
}

}  // namespace

void check_manifest(const Manifest& manifest) {
    std::vector<std::pair<Kind, std::string>> seen;
    for (const auto& c : manifest.components) {
        const std::string what = std::string(to_string(c.kind())) + " '" + c.name + "'";
        if (!identifier(c.name))
            throw Error(what + ": a component's name is lowercase letters, digits and _, starting with a letter");
        if (std::find(seen.begin(), seen.end(), std::pair{c.kind(), c.name}) != seen.end())
            throw Error(what + " is registered twice");
        seen.emplace_back(c.kind(), c.name);
        const bool has_factory = std::visit([](const auto& f) { return bool(f); }, c.factory);
        if (!has_factory) throw Error(what + " has no factory");
        const bool layer_like = c.kind() == Kind::layer || c.kind() == Kind::activation;
        if (layer_like && std::find(model_entry_keys.begin(), model_entry_keys.end(), c.name) != model_entry_keys.end())
            throw Error(what + ": a model entry uses the key '" + c.name + "' itself (beside its layer); name the "
                               "component otherwise");
        if (layer_like && c.checks.empty())
            throw Error(what + " gives no check cases: check-plugin builds it on each case's input shape, so give "
                               "at least one (the default is {{Shape{7}}, {Shape{2, 3}}})");
        const auto reserved = reserved_keys(c.kind());
        std::vector<std::string> names;
        for (const auto& spec : c.schema.specs()) {
            const std::string param = what + ": parameter '" + spec.name + "'";
            if (!identifier(spec.name))
                throw Error(param + ": a parameter's name is lowercase letters, digits and _, starting with a letter");
            if (std::find(names.begin(), names.end(), spec.name) != names.end()) throw Error(param + " is declared twice");
            if (std::find(reserved.begin(), reserved.end(), spec.name) != reserved.end())
                throw Error(param + ": the experiment file uses that key itself where this component's parameters "
                                    "stand; rename it");
            if (const std::string problem = spec_problem(spec); !problem.empty()) throw Error(param + ": " + problem);
            names.push_back(spec.name);
        }
    }
}

fs::path builtin_plugin_dir() {
    return fs::weakly_canonical(boost::dll::program_location().parent_path() / ".." / "lib" / "backplane" / "plugins");
}

std::shared_ptr<const PluginLibrary> Registry::load_library(const fs::path& given) {
    if (given.empty()) throw Error("a plugin path is empty");
    std::error_code fs_ec;
    const fs::path path = fs::weakly_canonical(fs::absolute(given), fs_ec);
    for (const auto& lib : libraries_)
        if (lib->path == path) return lib;
    if (fs::is_directory(path)) throw Error(plugin_error(path, "a folder, not a library file"));
    if (!fs::is_regular_file(path)) throw Error(plugin_error(path, "no such file"));

    auto handle = std::make_shared<boost::dll::shared_library>();
    boost::dll::fs::error_code ec;
    handle->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
    if (ec) {
        throw Error(plugin_error(path, "not a loadable shared library (" + ec.message() +
                                           "); remove it from the plugin path or rebuild it"));
    }

    // The ABI version first: nothing else in a library of another version can be trusted.
    if (!handle->has(BACKPLANE_ABI_SYMBOL)) {
        throw Error(plugin_error(path, "no entry point '" BACKPLANE_ABI_SYMBOL
                                       "': not a Backplane plugin (define one with BACKPLANE_PLUGIN)"));
    }
    const uint32_t abi = handle->get<uint32_t()>(BACKPLANE_ABI_SYMBOL)();
    if (abi != BACKPLANE_ABI_VERSION) {
        // Plugins before ABI 5 did not record their SDK release.
        const std::string sdk = handle->has(BACKPLANE_SDK_VERSION_SYMBOL)
                                    ? "Backplane SDK " + std::string(handle->get<const char*()>(BACKPLANE_SDK_VERSION_SYMBOL)())
                                    : "a Backplane SDK older than 0.2.0";
        const std::string what = "it was built against " + sdk + " (built for ABI " + std::to_string(abi) +
                                 "); this Backplane " BACKPLANE_VERSION " supports ABI " +
                                 std::to_string(BACKPLANE_ABI_VERSION) + " only. ";
        throw Error(plugin_error(path, what + (abi < BACKPLANE_ABI_VERSION
                                                   ? "Rebuild the plugin against this Backplane's SDK (find_package(Backplane "
                                                     BACKPLANE_VERSION ") from its install prefix)"
                                                   : "Update Backplane to the release of that SDK, or rebuild the plugin "
                                                     "against this Backplane's SDK")));
    }
    if (!handle->has(BACKPLANE_MANIFEST_SYMBOL))
        throw Error(plugin_error(path, "no entry point '" BACKPLANE_MANIFEST_SYMBOL "'"));

    auto lib = std::make_shared<PluginLibrary>();
    lib->path = path;
    lib->handle = handle;
    try {
        lib->manifest = handle->get<const Manifest*()>(BACKPLANE_MANIFEST_SYMBOL)();
    } catch (const std::exception& e) {
        throw Error(plugin_error(path, std::string("registering its components failed: ") + e.what()));
    }
    if (!lib->manifest) throw Error(plugin_error(path, "its manifest is null"));

    // Check every name before registering any, so a failed load changes nothing.
    try {
        check_manifest(*lib->manifest);
    } catch (const Error& e) {
        throw Error(plugin_error(path, e.what()));
    }
    for (const auto& c : lib->manifest->components) {
        const auto& taken = by_kind_[int(c.kind())];
        if (auto it = taken.find(c.name); it != taken.end()) {
            throw Error(plugin_error(path, std::string(to_string(c.kind())) + " '" + c.name +
                                               "' is already provided by " + it->second.library->path.string() +
                                               "; two libraries cannot claim one component name"));
        }
    }
    for (const auto& c : lib->manifest->components) by_kind_[int(c.kind())].emplace(c.name, RegisteredComponent{&c, lib});
    libraries_.push_back(lib);
    return lib;
}

void Registry::load_path(const fs::path& path) {
    if (!fs::is_directory(path)) {
        load_library(path);
        return;
    }
    for (const auto& f : library_files(path)) load_library(f);
}

void Registry::load_default_paths() {
    const fs::path builtin = builtin_plugin_dir();
    if (!fs::is_directory(builtin))
        throw Error("the built-in plugin folder " + builtin.string() + " is missing: rebuild or reinstall Backplane");
    load_path(builtin);
    const char* env = std::getenv("BACKPLANE_PLUGIN_PATH");
    if (!env) return;
    const std::string list = env;
    for (std::size_t start = 0; start <= list.size();) {
        const std::size_t end = std::min(list.find(':', start), list.size());
        const fs::path entry = list.substr(start, end - start);
        start = end + 1;
        if (!entry.empty()) load_or_skip(entry);
    }
}

void Registry::load_or_skip(const fs::path& entry) {
    const std::string why = " (skipped: it is on BACKPLANE_PLUGIN_PATH)";
    try {
        std::error_code ec;
        if (!fs::exists(entry, ec)) {
            skipped_.push_back("BACKPLANE_PLUGIN_PATH names " + entry.string() + ", which " +
                               (ec ? "cannot be reached: " + ec.message() : std::string("does not exist")));
            return;
        }
        std::vector<fs::path> files = {entry};
        if (fs::is_directory(entry)) files = library_files(entry);
        for (const auto& f : files) {
            try {
                load_library(f);
            } catch (const Error& e) {
                skipped_.push_back(e.what() + why);
            }
        }
    } catch (const fs::filesystem_error& e) {   // an unreadable folder, a loop of links
        skipped_.push_back("BACKPLANE_PLUGIN_PATH names " + entry.string() + ": " + e.code().message() + why);
    }
}

std::string Registry::plugin_hint() const {
    std::string hint = "; a plugin's components need its library in the experiment's plugins: list or in "
                       "BACKPLANE_PLUGIN_PATH";
    if (!skipped_.empty()) hint += " (not loaded: " + join(skipped_, "; ") + ")";
    return hint;
}

const RegisteredComponent* Registry::find(Kind kind, const std::string& name) const {
    const auto& m = by_kind_[int(kind)];
    auto it = m.find(name);
    return it == m.end() ? nullptr : &it->second;
}

const RegisteredComponent& Registry::get(Kind kind, const std::string& name) const {
    if (auto* c = find(kind, name)) return *c;
    const auto known = names(kind);
    // No near name: more likely a plugin that is not loaded than a typo.
    const std::string suggestion = did_you_mean(name, known);
    throw Error(std::string("unknown ") + to_string(kind) + " '" + name + "'" + suggestion + "; known " + plural(kind) +
                ": " + join(known) + (suggestion.empty() ? plugin_hint() : ""));
}

std::vector<std::string> Registry::names(Kind kind) const {
    std::vector<std::string> out;
    for (const auto& [name, c] : by_kind_[int(kind)]) out.push_back(name);
    return out;
}

const std::map<std::string, RegisteredComponent>& Registry::components(Kind kind) const {
    return by_kind_[int(kind)];
}

template <class T>
std::shared_ptr<T> Registry::create(const std::string& name, const Params& params) const {
    constexpr Kind kind = kind_of<T>;
    const RegisteredComponent& c = get(kind, name);
    const auto& factory = std::get<Factory<T>>(c.info->factory);
    std::unique_ptr<T> made;
    try {
        made = factory(params, *this);
    } catch (const std::exception& e) {
        throw Error(std::string(to_string(kind)) + " '" + name + "' (" + c.library->path.filename().string() +
                    "): " + e.what());
    }
    if (!made) throw Error(plugin_error(c.library->path, "the factory of '" + name + "' returned nothing"));
    // The deleter holds the library, so the object's code stays mapped until it is gone.
    return std::shared_ptr<T>(made.release(), [lib = c.library](T* p) { delete p; });
}

template std::shared_ptr<Layer> Registry::create<Layer>(const std::string&, const Params&) const;
template std::shared_ptr<Activation> Registry::create<Activation>(const std::string&, const Params&) const;
template std::shared_ptr<Loss> Registry::create<Loss>(const std::string&, const Params&) const;
template std::shared_ptr<Optimizer> Registry::create<Optimizer>(const std::string&, const Params&) const;
template std::shared_ptr<Dataset> Registry::create<Dataset>(const std::string&, const Params&) const;
template std::shared_ptr<Schedule> Registry::create<Schedule>(const std::string&, const Params&) const;

std::shared_ptr<const Activation> Registry::activation(const std::string& name) const {
    const auto& c = get(Kind::activation, name);
    return create<Activation>(name, Params::defaults(c.info->schema));
}

}  // namespace bp
