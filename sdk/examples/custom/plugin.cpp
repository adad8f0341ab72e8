// The library's entry points: its name and version, and every component it provides.
#include <backplane/backplane.hpp>

void register_swish(bp::Manifest& manifest);      // swish.cpp
void register_rms_norm(bp::Manifest& manifest);   // rms_norm.cpp
void register_gate(bp::Manifest& manifest);       // gate.cpp

BACKPLANE_PLUGIN("my-components", "1.0.0") {
    register_swish(manifest);
    register_rms_norm(manifest);
    register_gate(manifest);
}
