// The built-in registry, shared by the tests and the fuzz targets.
#pragma once

#include "model/registry.hpp"

namespace test {

// The built-in plugins, loaded once, from <bin>/../lib/backplane/plugins as the command
// finds them (tests and fuzz targets run from build/bin).
inline bp::Registry& builtin_registry() {
    static bp::Registry r = [] {
        bp::Registry reg;
        reg.load_path(bp::builtin_plugin_dir());
        return reg;
    }();
    return r;
}

}  // namespace test
