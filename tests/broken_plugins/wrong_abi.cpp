// A plugin built against a future sdk: the loader must refuse it before reading anything else.
#include <cstdint>
extern "C" __attribute__((visibility("default"))) uint32_t backplane_abi_version() { return 999; }
