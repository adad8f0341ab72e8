// The IDX format (MNIST, Fashion-MNIST), apart from the dataset that uses it so that
// the parsing can be tested and fuzzed from bytes (tests/fuzz/fuzz_idx.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace datasets {

// Where Debian's package dataset-fashion-mnist puts its files.
inline constexpr const char* fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";

// A whole IDX file: header then bytes. Only unsigned bytes (type 0x08) are used by
// the image sets this reads.
struct IdxArray {
    std::vector<int64_t> dims;
    std::vector<unsigned char> data;
};

// Fills up to `n` bytes at `into` and returns how many it filled, 0 at the end of
// the source; throws bp::Error when the source is corrupt.
using ByteSource = std::function<std::size_t(void* into, std::size_t n)>;

// One IDX array from `read`; `name` names the source in messages. Throws bp::Error
// when it is not an IDX file of bytes, is truncated or is longer than its header says.
IdxArray parse_idx(const ByteSource& read, const std::string& name);

// The same from bytes in memory.
IdxArray parse_idx(std::string_view bytes, const std::string& name);

// The same from a file, gzipped or not.
IdxArray read_idx(const std::filesystem::path& path);

}  // namespace datasets
