// What the fuzz targets share: how a finding is reported, and (from the tests) the
// built-in plugins for the targets that read against them.
#pragma once

#include "../builtin_registry.hpp"   // test::builtin_registry()

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

}  // namespace fuzz
