#include "tools/scaffold.hpp"

#include "model/registry.hpp"
#include "train/run_files.hpp"

#include <algorithm>
#include <cctype>

namespace bp {

namespace fs = std::filesystem;

// The skeleton sources, core/tools/scaffold/<kind>.cpp.in, embedded by core/CMakeLists.txt.
namespace scaffold_text {
extern const char* const layer;
extern const char* const activation;
extern const char* const loss;
extern const char* const optimizer;
}  // namespace scaffold_text

namespace {

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
    return s;
}

// my_layer -> MyLayer
std::string class_name(const std::string& name) {
    std::string out;
    bool upper = true;
    for (char c : name) {
        if (c == '_') {
            upper = true;
            continue;
        }
        out += upper ? char(std::toupper(static_cast<unsigned char>(c))) : c;
        upper = false;
    }
    return out;
}

const char* source_template(Kind kind) {
    switch (kind) {
        case Kind::layer: return scaffold_text::layer;
        case Kind::activation: return scaffold_text::activation;
        case Kind::loss: return scaffold_text::loss;
        case Kind::optimizer: return scaffold_text::optimizer;
        default: throw Error(std::string("new-plugin has no skeleton for a ") + to_string(kind));
    }
}

// An experiment that trains with the new component, on a built-in synthetic dataset.
std::string example_experiment(const std::string& name, Kind kind) {
    const std::string head = "# Trains with " + name + ", loaded from this project's build folder.\nname: " + name +
                             "-example\nseed: 1\nplugins: [ build ]          # the folder holding lib" + name +
                             ".so, relative to this file\n";
    const std::string spirals = "data: { source: two_spirals, samples: 2000, noise: 0.01 }\n";
    switch (kind) {
        case Kind::layer:
            return head + spirals + "model:\n  - dense: { units: 64, activation: tanh }\n  - " + name +
                   "\n  - dense: { units: 64, activation: relu }\n  - dense: { units: 2 }\n"
                   "loss: softmax_cross_entropy\noptimizer: { name: adam, lr: 0.005 }\n"
                   "train: { epochs: 100, batch_size: 64 }\n";
        case Kind::activation:
            return head + spirals + "model:\n  - dense: { units: 64 }\n  - " + name + "\n  - dense: { units: 64, activation: " +
                   name + " }\n  - dense: { units: 2 }\n"
                   "loss: softmax_cross_entropy\noptimizer: { name: adam, lr: 0.005 }\n"
                   "train: { epochs: 100, batch_size: 64 }\n";
        case Kind::loss:
            return head + "data: { source: sine, samples: 1000, noise: 0.05 }\n"
                          "model:\n  - dense: { units: 32, activation: tanh }\n  - dense: { units: 32, activation: tanh }\n"
                          "  - dense: { units: 1 }\nloss: " + name + "\noptimizer: { name: adam, lr: 0.01 }\n"
                          "train: { epochs: 200, batch_size: 32 }\n";
        case Kind::optimizer:
            return head + spirals + "model:\n  - dense: { units: 64, activation: tanh }\n"
                   "  - dense: { units: 64, activation: tanh }\n  - dense: { units: 2 }\n"
                   "loss: softmax_cross_entropy\noptimizer: { name: " + name + ", lr: 0.05, momentum: 0.9 }\n"
                   "train: { epochs: 100, batch_size: 64 }\n";
        default: return "";
    }
}

std::string cmake_lists(const std::string& name, const fs::path& prefix) {
    const std::string version = std::string(BACKPLANE_VERSION).substr(0, std::string(BACKPLANE_VERSION).rfind('.'));
    std::string hints = prefix.empty() ? "" : " HINTS \"" + prefix.string() + "\"";
    return "# The " + name + " plugin, built against an installed Backplane:\n"
           "#   cmake -S . -B build && cmake --build build\n"
           "# (add -DCMAKE_PREFIX_PATH=<Backplane's install prefix> when Backplane is elsewhere).\n"
           "cmake_minimum_required(VERSION 3.22)\nproject(" + name + " CXX)\n\n"
           "find_package(Backplane " + version + " REQUIRED" + hints + ")\n"
           "backplane_add_plugin(" + name + " SOURCES " + name + ".cpp)\n";
}

}  // namespace

fs::path installed_prefix() {
    const fs::path prefix = builtin_plugin_dir().parent_path().parent_path().parent_path();   // <prefix>/lib/backplane/plugins
    return fs::exists(prefix / "lib" / "cmake" / "Backplane" / "BackplaneConfig.cmake") ? prefix : fs::path{};
}

std::vector<fs::path> write_plugin_project(const std::string& name, Kind kind, const fs::path& dir,
                                           const fs::path& prefix, const Registry& known) {
    if (!identifier(name))
        throw Error("plugin name '" + name + "' must be lower case letters, digits and _, starting with a letter, at most "
                    "64 characters (e.g. my_layer)");
    // CMake's own target names, and words YAML reads as something other than a name.
    static const char* const reserved[] = {"all", "install", "test", "clean", "help", "package", "null", "true",
                                           "false", "yes", "no", "on", "off", "y", "n"};
    for (const char* r : reserved)
        if (name == r) throw Error("plugin name '" + name + "' is reserved by CMake or YAML; choose another");
    for (const Kind k : kinds)
        if (const auto* c = known.find(k, name))
            throw Error("plugin name '" + name + "' is taken: " + to_string(k) + " '" + name + "' comes from " +
                        c->library->path.filename().string() + "; choose another (e.g. my_" + name + ")");

    const std::string source =
        replace_all(replace_all(source_template(kind), "@CLASS@", class_name(name)), "@NAME@", name);
    const std::vector<std::pair<fs::path, std::string>> files = {
        {dir / "CMakeLists.txt", cmake_lists(name, prefix)},
        {dir / (name + ".cpp"), source},
        {dir / (name + "-example.yaml"), example_experiment(name, kind)},
    };
    std::vector<fs::path> written;
    try {
        if (fs::exists(dir) && !fs::is_directory(dir)) throw Error(dir.string() + " exists and is not a folder");
        if (fs::exists(dir) && !fs::is_empty(dir))
            throw Error(dir.string() + " already holds files; choose another folder with --dir");
        fs::create_directories(dir);
        for (const auto& [path, text] : files) {
            write_file_atomic(path, text);
            written.push_back(path);
        }
    } catch (const fs::filesystem_error& e) {
        throw Error("cannot write the project in " + dir.string() + ": " + e.code().message());
    }
    return written;
}

}  // namespace bp
