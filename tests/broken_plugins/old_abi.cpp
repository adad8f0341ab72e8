// A plugin built against an sdk from before the SDK release was recorded (ABI 4).
#include <cstdint>
extern "C" __attribute__((visibility("default"))) uint32_t backplane_abi_version() { return 4; }
