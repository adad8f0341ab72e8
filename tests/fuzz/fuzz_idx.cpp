// libFuzzer target: the IDX reader (plugins/datasets/idx_format.cpp). The first byte
// picks the path the rest takes: parsed from memory (0), written to a file and read
// as a file, gzipped or not as its first bytes say (1), or gzipped into a file and
// read back through zlib (2). A bp::Error is the expected answer to a bad file;
// anything else escaping, a crash or a sanitizer report is a finding.
#include "fuzz_support.hpp"
#include "idx_format.hpp"

#include <backplane/error.hpp>

#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace fs = std::filesystem;

namespace {

// This process's own folder for the files, removed when it exits (the path is never
// freed, so that the exit handler can still read it).
const fs::path& folder() {
    static const fs::path* const dir = [] {
        auto* d = new fs::path(fs::temp_directory_path() / ("backplane-fuzz-idx-" + std::to_string(getpid())));
        fs::create_directories(*d);
        std::atexit([] { std::error_code ec; fs::remove_all(folder(), ec); });
        return d;
    }();
    return *dir;
}

fs::path write_plain(std::string_view bytes) {
    const fs::path file = folder() / "input.idx";
    std::ofstream(file, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    return file;
}

fs::path write_gzipped(std::string_view bytes) {
    const fs::path file = folder() / "input.idx.gz";
    gzFile f = gzopen(file.c_str(), "wb");
    if (!f) fuzz::broken("cannot write the gzip file");
    if (!bytes.empty() && gzwrite(f, bytes.data(), unsigned(bytes.size())) != int(bytes.size())) fuzz::broken("gzwrite failed");
    gzclose(f);
    return file;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    folder();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
    datasets::IdxArray a;
    try {
        switch (data[0] % 3) {
            case 0: a = datasets::parse_idx(bytes, "fuzz.idx"); break;
            case 1: a = datasets::read_idx(write_plain(bytes)); break;
            default: a = datasets::read_idx(write_gzipped(bytes)); break;
        }
    } catch (const bp::Error&) {
        return 0;
    }
    // An array that loads holds exactly what its header declares.
    if (a.dims.empty() || a.dims.size() > 4) fuzz::broken("an array of 0 or more than 4 dimensions was accepted");
    unsigned __int128 total = 1;   // 4 dimensions below 2^32 each: no wrapping around
    for (int64_t d : a.dims) {
        if (d <= 0) fuzz::broken("a dimension of size 0 was accepted");
        total *= uint64_t(d);
    }
    if (total != a.data.size()) fuzz::broken("the data is not the size the header declares");
    return 0;
}
