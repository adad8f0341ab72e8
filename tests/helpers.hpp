// Shared by the tests: the built-in registry, temporary folders and files.
#pragma once

#include "builtin_registry.hpp"
#include "train/run.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

namespace test {

// A fresh, empty folder under the system's temp folder, named for the test.
inline std::filesystem::path temp_dir(const std::string& name) {
    const auto dir = std::filesystem::temp_directory_path() / ("backplane-test-" + name);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

inline std::filesystem::path write_file(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path) << text;
    return path;
}

inline std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), {}};
}

// Trains `e` into `out` (or resumes the run in `resume`) with no output.
inline bp::RunResult run_quietly(const bp::Experiment& e, const std::filesystem::path& out,
                                 const std::filesystem::path& resume = {}) {
    bp::RunOptions options;
    options.out = out;
    options.resume = resume;
    options.quiet = true;
    std::ostringstream log;
    return bp::run_experiment(e, builtin_registry(), options, log);
}

// A built-in layer with its defaults, `set` overriding some (not built yet).
inline std::shared_ptr<bp::Layer> make_layer(const std::string& name, const std::map<std::string, bp::Value>& set = {}) {
    auto& registry = builtin_registry();
    bp::Params p = bp::Params::defaults(registry.get(bp::Kind::layer, name).info->schema);
    for (const auto& [k, v] : set) p.set(k, v);
    return registry.create<bp::Layer>(name, p);
}

// The message of the bp::Error that `f` throws, or "" when it throws none.
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const bp::Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace test
