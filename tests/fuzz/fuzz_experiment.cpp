// libFuzzer target: the experiment reader (core/model/experiment.cpp) with the
// built-in plugins loaded. The input is the YAML text, then optionally a line
// "---SET---" and one `--set KEY=VALUE` override per line. Each input is read with
// parse_experiment and parse_comparison; an experiment that reads must read back
// from its to_yaml() (a run's config.yaml reruns it) to the same text. A bp::Error
// is the expected answer to a bad file; anything else escaping (yaml-cpp's own
// exceptions included), a crash, a hang or a sanitizer report is a finding.
#include "fuzz_support.hpp"
#include "model/comparison.hpp"
#include "model/registry.hpp"

#include <backplane/error.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace fs = std::filesystem;

namespace {

// The experiment "file" lies in an empty folder, so that relative paths in it
// (plugins:, data files) name nothing. Nothing is ever written there, so every
// process (libFuzzer's -fork and -jobs) shares one, left in place.
const fs::path& experiment_file() {
    static const fs::path file = [] {
        const fs::path dir = fs::temp_directory_path() / "backplane-fuzz-experiment";
        fs::create_directories(dir);
        return dir / "experiment.yaml";
    }();
    return file;
}

void split(const std::string& input, std::string& text, std::vector<std::string>& overrides) {
    const std::string marker = "\n---SET---\n";
    const std::size_t at = input.find(marker);
    text = input.substr(0, at);
    if (at == std::string::npos) return;
    const std::string rest = input.substr(at + marker.size());
    for (std::size_t start = 0; start < rest.size();) {
        const std::size_t end = std::min(rest.find('\n', start), rest.size());
        if (end > start) overrides.push_back(rest.substr(start, end - start));
        start = end + 1;
    }
}

void experiment(const std::string& text, const std::vector<std::string>& overrides) {
    std::string resolved;
    try {
        resolved = bp::to_yaml(bp::parse_experiment(text, experiment_file(), overrides, test::builtin_registry()));
    } catch (const bp::Error&) {
        return;
    }
    std::string again;
    try {
        again = bp::to_yaml(bp::parse_experiment(resolved, experiment_file(), {}, test::builtin_registry()));
    } catch (const bp::Error& e) {
        fuzz::broken("the resolved experiment does not read back: " + std::string(e.what()) + "\n" + resolved);
    }
    if (again != resolved) fuzz::broken("the resolved experiment reads back differently:\n" + resolved + "---\n" + again);
}

void comparison(const std::string& text, const std::vector<std::string>& overrides) {
    try {
        bp::parse_comparison(text, experiment_file(), overrides, test::builtin_registry());
    } catch (const bp::Error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // Before libFuzzer's own handlers are in place: say why, rather than abort silently.
    try {
        test::builtin_registry();
    } catch (const bp::Error& e) {
        fuzz::broken(std::string("cannot load the built-in plugins: ") + e.what());
    }
    experiment_file();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    std::string text;
    std::vector<std::string> overrides;
    split(std::string(reinterpret_cast<const char*>(data), size), text, overrides);
    experiment(text, overrides);
    comparison(text, overrides);
    return 0;
}
