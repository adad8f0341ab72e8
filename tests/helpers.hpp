// Shared by the tests: the built-in registry, temporary folders and files.
#pragma once

#include "builtin_registry.hpp"
#include "train/run.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
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
