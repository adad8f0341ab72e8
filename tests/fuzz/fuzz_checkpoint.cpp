// libFuzzer target: a safetensors checkpoint from bytes (bp::parse_checkpoint, what
// load_checkpoint reads a file with). A bp::Error is the expected answer to a bad
// file; anything else escaping, a crash or a sanitizer report is a finding.
#include "fuzz_support.hpp"
#include "train/checkpoint.hpp"

#include <backplane/error.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    bp::Checkpoint c;
    try {
        c = bp::parse_checkpoint(bytes, "fuzz.safetensors");
    } catch (const bp::Error&) {
        return 0;
    }
    // A file that loads is 8 bytes of length, the header, then its tensors' data
    // exactly, in order: nothing shared, nothing left over.
    uint64_t header = 0;
    std::memcpy(&header, data, 8);
    uint64_t tensor_bytes = 0;
    for (const auto& t : c.tensors) tensor_bytes += uint64_t(t.value.size()) * sizeof(float);
    if (8 + header + tensor_bytes != size) fuzz::broken("the tensors do not cover the data section exactly");
    return 0;
}
