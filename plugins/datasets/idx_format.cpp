#include "idx_format.hpp"

#include <backplane/error.hpp>

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

namespace datasets {

namespace fs = std::filesystem;

namespace {

// Reads `n` bytes, or fewer at the end of the source.
std::size_t read_fully(const ByteSource& read, void* into, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        const std::size_t got = read(static_cast<char*>(into) + done, n - done);
        if (got == 0) break;
        done += got;
    }
    return done;
}

}  // namespace

IdxArray parse_idx(const ByteSource& source, const std::string& name) {
    auto read = [&](void* into, std::size_t n) { return read_fully(source, into, n); };
    unsigned char magic[4];
    if (read(magic, 4) != 4) throw bp::Error("idx: " + name + " is too short for an IDX header");
    if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] < 1 || magic[3] > 4) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%02x %02x %02x %02x", magic[0], magic[1], magic[2], magic[3]);
        throw bp::Error("idx: " + name + " has magic number " + buf +
                        ", expected 00 00 08 0N (unsigned bytes, N = 1 to 4 dimensions): not an IDX file of bytes");
    }
    IdxArray a;
    const std::size_t most = std::size_t(1) << 36;
    std::size_t total = 1;
    for (int d = 0; d < magic[3]; ++d) {
        unsigned char be[4];
        if (read(be, 4) != 4) throw bp::Error("idx: " + name + " is truncated inside its header");
        const int64_t n = (int64_t(be[0]) << 24) | (be[1] << 16) | (be[2] << 8) | be[3];
        if (n <= 0) throw bp::Error("idx: " + name + " declares dimension " + std::to_string(d) + " of size 0");
        a.dims.push_back(n);
        // Checked before multiplying: a product past 2^64 wraps around and can look small.
        if (std::size_t(n) > most / total)
            throw bp::Error("idx: " + name + " declares more than 64 GiB of data: a corrupt header");
        total *= std::size_t(n);
    }
    // Read in pieces, the array growing with what arrives: a corrupt header may
    // declare gigabytes that the file does not hold, and they are not allocated first.
    const std::size_t piece = std::size_t(1) << 20;
    std::size_t got = 0;
    while (got < total) {
        const std::size_t want = std::min(piece, total - got);
        a.data.resize(got + want);
        const std::size_t n = read(a.data.data() + got, want);
        got += n;
        if (n < want) break;
    }
    if (got != total)
        throw bp::Error("idx: " + name + " is truncated: its header declares " + std::to_string(total) +
                        " bytes of data, the file holds " + std::to_string(got));
    unsigned char extra;
    if (read(&extra, 1) != 0)
        throw bp::Error("idx: " + name + " is longer than its header declares (" + std::to_string(total) +
                        " bytes of data)");
    return a;
}

IdxArray parse_idx(std::string_view bytes, const std::string& name) {
    return parse_idx(
        [&](void* into, std::size_t n) {
            n = std::min(n, bytes.size());
            if (n > 0) std::memcpy(into, bytes.data(), n);
            bytes.remove_prefix(n);
            return n;
        },
        name);
}

IdxArray read_idx(const fs::path& path) {
    if (!fs::exists(path)) {
        std::string msg = "idx: " + path.string() + " does not exist";
        if (path.parent_path() == fashion_mnist_dir)
            msg += "; Fashion-MNIST comes with Debian's package dataset-fashion-mnist (apt-get install "
                   "dataset-fashion-mnist)";
        throw bp::Error(msg);
    }
    // gzread reads plain files as they are, so one path handles both.
    std::unique_ptr<gzFile_s, int (*)(gzFile)> f(gzopen(path.c_str(), "rb"), gzclose);
    if (!f) throw bp::Error("idx: cannot open " + path.string());
    return parse_idx(
        [&](void* into, std::size_t n) -> std::size_t {
            const int got = gzread(f.get(), into, unsigned(std::min<std::size_t>(n, 1 << 30)));
            if (got < 0) {
                int err = 0;
                throw bp::Error("idx: " + path.string() + " is corrupt (" + gzerror(f.get(), &err) + ")");
            }
            return std::size_t(got);
        },
        path.string());
}

}  // namespace datasets
