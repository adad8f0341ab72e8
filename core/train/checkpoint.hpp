// Checkpoints in the safetensors format: an 8-byte little-endian header length, a
// JSON header naming each tensor (dtype F32, shape, byte offsets) plus string
// metadata, then the raw little-endian float data. numpy and PyTorch users read the
// weights with the `safetensors` package, or with ten lines of their own.
#pragma once

#include <backplane/tensor.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace bp {

struct Checkpoint {
    std::vector<NamedTensor> tensors;              // in file order
    std::map<std::string, std::string> metadata;

    const NamedTensor* find(const std::string& name) const;
};

// Written whole to a temporary file, then renamed over `path`.
void save_checkpoint(const std::filesystem::path& path, const Checkpoint& c);

// Throws bp::Error naming the file when it is missing, truncated or malformed.
Checkpoint load_checkpoint(const std::filesystem::path& path);

// The same from the file's bytes; `name` names it in messages.
Checkpoint parse_checkpoint(std::string_view bytes, const std::string& name);

}  // namespace bp
