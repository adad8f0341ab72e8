#include "train/checkpoint.hpp"

#include "train/run_files.hpp"

#include <backplane/error.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
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

namespace {

using Json = nlohmann::json;

// Every error names the file.
struct Failure {
    const std::string& file;
    Error operator()(const std::string& what) const { return Error("checkpoint " + file + ": " + what); }
};

// A JSON value as a message shows it: a scalar as JSON, a list as "[2, 3]" with
// anything inside it abbreviated (a header may nest thousands deep, and dump()
// recurses); never throws, whatever the strings hold.
std::string shown(const Json& j) {
    if (j.is_object()) return "an object";
    if (!j.is_array()) return j.dump(-1, ' ', false, Json::error_handler_t::replace);
    std::string s = "[";
    for (std::size_t i = 0; i < j.size(); ++i) {
        if (i == 8) return s + ", ...]";
        s += i ? ", " : "";
        s += j[i].is_array() ? "[...]" : j[i].is_object() ? "{...}" : shown(j[i]);
    }
    return s + "]";
}

// One tensor's header entry: its shape and where its bytes lie in the data section.
struct Entry {
    std::string name;
    int64_t rows = 1, cols = 1;
    uint64_t begin = 0, end = 0;
};

// A JSON integer >= 0. nlohmann's get<>() would convert floats and negative numbers
// silently (and a float too large for the type is undefined behaviour).
bool natural(const Json& j, uint64_t& out) {
    if (j.is_number_unsigned()) {
        out = j.get<uint64_t>();
        return true;
    }
    if (!j.is_number_integer() || j.get<int64_t>() < 0) return false;
    out = uint64_t(j.get<int64_t>());
    return true;
}

uint64_t header_length(std::string_view bytes, const Failure& fail) {
    if (bytes.size() < 8) throw fail("too short for a safetensors header (truncated?)");
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    // Compared with what follows the length, so that no sum can wrap around.
    if (n > bytes.size() - 8)
        throw fail("its header length (" + std::to_string(n) + " bytes) runs past the end of the file (truncated?)");
    return n;
}

Json parse_header(std::string_view text, const Failure& fail) {
    Json header;
    try {
        header = Json::parse(text);
    } catch (const Json::exception& e) {
        throw fail(std::string("its header is not valid JSON (") + e.what() + ")");
    }
    if (!header.is_object()) throw fail("its header is not a JSON object");
    return header;
}

std::map<std::string, std::string> read_metadata(const Json& j, const Failure& fail) {
    if (!j.is_object()) throw fail("its __metadata__ must map names to strings, not " + shown(j));
    std::map<std::string, std::string> out;
    for (const auto& [key, value] : j.items()) {
        if (!value.is_string()) throw fail("its __metadata__ entry '" + key + "' is " + shown(value) + ", not a string");
        out[key] = value.get<std::string>();
    }
    return out;
}

// The shape as rows x cols (a row per outermost index), each dimension and the
// product checked against what `data_size` bytes can hold before multiplying.
void read_shape(const Json& shape, uint64_t data_size, Entry& e, const Failure& fail) {
    const std::string what = "tensor '" + e.name + "' has shape " + shown(shape);
    if (!shape.is_array()) throw fail(what + ": expected a list of non-negative integers");
    const uint64_t most = data_size / sizeof(float);   // elements the data section can hold
    uint64_t elements = 1;
    // A dimension may be 0 (an empty tensor, as save_checkpoint writes one): the format allows it.
    for (std::size_t i = 0; i < shape.size(); ++i) {
        uint64_t d = 0;
        if (!natural(shape[i], d)) throw fail(what + ": expected a list of non-negative integers");
        if (elements != 0 && d > most / elements)
            throw fail(what + ": more elements than the " + std::to_string(data_size) + " bytes of data hold");
        elements *= d;
        if (i == 0) e.rows = int64_t(d);
        else e.cols *= int64_t(d);
    }
}

void read_offsets(const Json& offsets, const Json& shape, uint64_t data_size, Entry& e, const Failure& fail) {
    const std::string what = "tensor '" + e.name + "' has data_offsets " + shown(offsets);
    if (!offsets.is_array() || offsets.size() != 2 || !natural(offsets[0], e.begin) || !natural(offsets[1], e.end) ||
        e.end < e.begin)
        throw fail(what + ": expected [begin, end], byte positions in the data with begin <= end");
    if (e.end > data_size)
        throw fail(what + ", outside the " + std::to_string(data_size) + " bytes of data (truncated?)");
    const uint64_t bytes = uint64_t(e.rows) * uint64_t(e.cols) * sizeof(float);   // <= data_size: read_shape checked
    if (e.end - e.begin != bytes)
        throw fail("tensor '" + e.name + "' has shape " + shown(shape) + " (" + std::to_string(bytes) +
                   " bytes of F32) but data offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]");
}

Entry read_entry(const std::string& name, const Json& j, uint64_t data_size, const Failure& fail) {
    Entry e;
    e.name = name;
    if (!j.is_object())
        throw fail("tensor '" + name + "' must be an object with dtype, shape and data_offsets, not " + shown(j));
    for (const char* key : {"dtype", "shape", "data_offsets"})
        if (!j.contains(key)) throw fail("tensor '" + name + "' has no " + key);
    const Json& dtype = j["dtype"];
    if (dtype != "F32")
        throw fail("tensor '" + name + "' is " + (dtype.is_string() ? dtype.get<std::string>() : shown(dtype)) +
                   ", only F32 is read");
    // A shape lists dimensions outermost first; rank 0 is one number.
    read_shape(j["shape"], data_size, e, fail);
    read_offsets(j["data_offsets"], j["shape"], data_size, e, fail);
    return e;
}

// The format requires the tensors' bytes to tile the data section: sorted by
// offset, the first begins at 0, each where the one before ended, the last at the
// end of the data. Anything else is a corrupt or hand-made file whose tensors may
// share bytes.
void check_tiling(std::vector<Entry>& entries, uint64_t data_size, const Failure& fail) {
    // An empty tensor before a full one at the same offset. Stable: of two tensors at one
    // offset, the message names the second by name.
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    if (entries.empty()) {
        if (data_size != 0) throw fail("it holds " + std::to_string(data_size) + " bytes of data but no tensor");
        return;
    }
    if (entries.front().begin != 0)
        throw fail("tensor '" + entries.front().name + "' begins at byte " + std::to_string(entries.front().begin) +
                   " of the data, but the first tensor must begin at 0");
    for (std::size_t i = 1; i < entries.size(); ++i) {
        const Entry &before = entries[i - 1], &e = entries[i];
        if (e.begin < before.end)
            throw fail("tensor '" + e.name + "' (bytes " + std::to_string(e.begin) + " to " + std::to_string(e.end) +
                       " of the data) overlaps tensor '" + before.name + "' (bytes " + std::to_string(before.begin) +
                       " to " + std::to_string(before.end) + ")");
        if (e.begin > before.end)
            throw fail("bytes " + std::to_string(before.end) + " to " + std::to_string(e.begin) +
                       " of the data, between tensor '" + before.name + "' and tensor '" + e.name +
                       "', belong to no tensor");
    }
    if (entries.back().end != data_size)
        throw fail("it holds " + std::to_string(data_size) + " bytes of data, but its last tensor '" +
                   entries.back().name + "' ends at byte " + std::to_string(entries.back().end));
}

}  // namespace

Checkpoint parse_checkpoint(std::string_view bytes, const std::string& name) {
    const Failure fail{name};
    const uint64_t n = header_length(bytes, fail);
    const Json header = parse_header(bytes.substr(8, n), fail);
    const std::string_view data = bytes.substr(8 + n);
    Checkpoint c;
    std::vector<Entry> entries;
    for (const auto& [key, value] : header.items()) {
        if (key == "__metadata__") c.metadata = read_metadata(value, fail);
        else entries.push_back(read_entry(key, value, data.size(), fail));
    }
    check_tiling(entries, data.size(), fail);
    // In file order (by offset, as save_checkpoint writes them), not the header's
    // name order: optimizer state comes back in the order state() gave it. (Empty
    // tensors next to each other share an offset: those come back in name order.)
    for (const Entry& e : entries) {
        Matrix m(e.rows, e.cols);
        if (e.end > e.begin) std::memcpy(m.data(), data.data() + e.begin, e.end - e.begin);   // no data pointer when empty
        c.tensors.push_back({e.name, std::move(m)});
    }
    return c;
}

Checkpoint load_checkpoint(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("checkpoint " + path.string() + ": cannot open it");
    const std::string bytes{std::istreambuf_iterator<char>(in), {}};
    return parse_checkpoint(bytes, path.string());
}

}  // namespace bp
