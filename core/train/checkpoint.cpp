#include "train/checkpoint.hpp"

#include "train/run_files.hpp"

#include <backplane/error.hpp>

#include <nlohmann/json.hpp>

#include <bit>
#include <cstring>
#include <fstream>

namespace fs = std::filesystem;

namespace bp {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

const NamedTensor* Checkpoint::find(const std::string& name) const {
    for (const auto& t : tensors)
        if (t.name == name) return &t;
    return nullptr;
}

void save_checkpoint(const fs::path& path, const Checkpoint& c) {
    nlohmann::json header = nlohmann::json::object();
    std::size_t offset = 0;
    for (const auto& t : c.tensors) {
        const std::size_t bytes = std::size_t(t.value.size()) * sizeof(float);
        header[t.name] = {{"dtype", "F32"},
                          {"shape", {t.value.rows(), t.value.cols()}},
                          {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    if (!c.metadata.empty()) header["__metadata__"] = c.metadata;
    std::string json = header.dump();
    json.append((8 - json.size() % 8) % 8, ' ');   // data starts 8-byte aligned, as the format recommends
    std::string out(8, '\0');
    const uint64_t n = json.size();
    std::memcpy(out.data(), &n, 8);
    out += json;
    out.reserve(out.size() + offset);
    for (const auto& t : c.tensors)
        out.append(reinterpret_cast<const char*>(t.value.data()), std::size_t(t.value.size()) * sizeof(float));
    write_file_atomic(path, out);
}

Checkpoint parse_checkpoint(std::string_view bytes, const std::string& name) {
    auto fail = [&](const std::string& what) { return Error("checkpoint " + name + ": " + what); };
    if (bytes.size() < 8) throw fail("too short for a safetensors header (truncated?)");
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    if (n > bytes.size() - 8) throw fail("its header length (" + std::to_string(n) + " bytes) runs past the end of the file (truncated?)");
    nlohmann::json header;
    try {
        header = nlohmann::json::parse(bytes.substr(8, n));
    } catch (const nlohmann::json::exception& e) {
        throw fail(std::string("its header is not valid JSON (") + e.what() + ")");
    }
    if (!header.is_object()) throw fail("its header is not a JSON object");
    const std::size_t data_start = 8 + n, data_size = bytes.size() - data_start;
    Checkpoint c;
    try {
        for (const auto& [name, entry] : header.items()) {
            if (name == "__metadata__") {
                for (const auto& [k, v] : entry.items()) c.metadata[k] = v.get<std::string>();
                continue;
            }
            if (entry.at("dtype") != "F32") throw fail("tensor '" + name + "' is " + entry.at("dtype").dump() + ", only F32 is read");
            const auto shape = entry.at("shape").get<std::vector<int64_t>>();
            const auto off = entry.at("data_offsets").get<std::vector<std::size_t>>();
            for (int64_t d : shape)
                if (d <= 0 || d > int64_t(data_size)) throw fail("tensor '" + name + "' has an impossible shape");
            int64_t rows = shape.size() >= 1 ? shape[0] : 1, cols = 1;
            for (std::size_t d = 1; d < shape.size(); ++d) {
                cols *= shape[d];
                if (cols > int64_t(data_size)) throw fail("tensor '" + name + "' has an impossible shape");
            }
            if (off.size() != 2 || off[1] < off[0] || off[1] > data_size ||
                off[1] - off[0] != std::size_t(rows * cols) * sizeof(float))
                throw fail("tensor '" + name + "' has data offsets outside the file or of the wrong size (truncated?)");
            Matrix m(rows, cols);
            std::memcpy(m.data(), bytes.data() + data_start + off[0], off[1] - off[0]);
            c.tensors.push_back({name, std::move(m)});
        }
    } catch (const nlohmann::json::exception& e) {
        throw fail(std::string("its header is malformed (") + e.what() + ")");
    }
    return c;   // tensors in name order: nlohmann::json keeps object keys sorted
}

Checkpoint load_checkpoint(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("checkpoint " + path.string() + ": cannot open it");
    const std::string bytes{std::istreambuf_iterator<char>(in), {}};
    return parse_checkpoint(bytes, path.string());
}

}  // namespace bp
