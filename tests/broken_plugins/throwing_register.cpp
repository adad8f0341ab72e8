// Registration itself throws.
#include <backplane/backplane.hpp>

#include <stdexcept>

BACKPLANE_PLUGIN("throwing-register", "1.0") {
    (void)manifest;
    throw std::runtime_error("registration exploded");
}
