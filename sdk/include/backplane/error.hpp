// The one exception type that crosses the plugin boundary.
#pragma once

#include <stdexcept>
#include <string>

#define BACKPLANE_API __attribute__((visibility("default")))

namespace bp {

// Thrown by components for anything a user can fix: a bad shape, a bad value, a
// missing file. The message is complete and printable as it is; the core adds
// where it happened (experiment file:line, layer index, plugin file).
class BACKPLANE_API Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace bp
