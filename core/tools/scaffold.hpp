// `backplane new-plugin`: writes a standalone plugin project for one component:
// CMakeLists.txt (find_package(Backplane)), the component's source with its schema,
// and an example experiment that trains with it. It builds and runs as written.
#pragma once

#include "model/registry.hpp"

#include <backplane/plugin.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace bp {

// The kinds new-plugin has a skeleton for.
inline constexpr Kind scaffold_kinds[] = {Kind::layer, Kind::activation, Kind::loss, Kind::optimizer};

// Writes the project into `dir` (created; it must not hold files already) and returns
// the files written. `prefix` is the install prefix of Backplane's CMake package, made
// a hint in CMakeLists.txt; empty when this Backplane is not installed. A name that
// `known` already holds (of any kind: layers and activations share model entries),
// or that CMake or YAML reserve, is refused.
std::vector<std::filesystem::path> write_plugin_project(const std::string& name, Kind kind,
                                                        const std::filesystem::path& dir,
                                                        const std::filesystem::path& prefix, const Registry& known);

// The install prefix of the running backplane when it is installed with its CMake
// package (prefix/lib/cmake/Backplane), else empty.
std::filesystem::path installed_prefix();

}  // namespace bp
