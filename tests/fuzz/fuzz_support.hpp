// What the fuzz targets share: how a finding is reported, and the built-in plugins for
// the targets that read against them.
#pragma once

#include "model/registry.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace fuzz {

// A finding that is not a crash (a broken property of what a reader accepted): said on
// stderr, then abort(), which libFuzzer reports and keeps the input of.
[[noreturn]] inline void broken(const std::string& what) {
    std::fprintf(stderr, "finding: %s\n", what.c_str());
    std::abort();
}

// The built-in plugins, from <bin>/../lib/backplane/plugins as the command finds them.
inline bp::Registry& builtin_registry() {
    static bp::Registry r = [] {
        bp::Registry reg;
        reg.load_path(bp::builtin_plugin_dir());
        return reg;
    }();
    return r;
}

}  // namespace fuzz
