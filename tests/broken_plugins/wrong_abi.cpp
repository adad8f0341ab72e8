// A plugin built against a future sdk: the loader must refuse it before reading
// anything else, and name the SDK release it needs.
#include <cstdint>
extern "C" __attribute__((visibility("default"))) uint32_t backplane_abi_version() { return 999; }
extern "C" __attribute__((visibility("default"))) const char* backplane_sdk_version() { return "9.9.0"; }
