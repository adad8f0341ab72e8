// text: the bytes of text files as next-byte prediction, for character language models.
// A sample is a window of `context` bytes (token ids 0..255); its targets are the same
// window moved on by one byte, a class per position. The end of every file is held out
// for validation, so no validation window overlaps a training one and every file (a
// topic, in the fortunes) is in both. Defaults read Debian's fortunes package.
#include <backplane/backplane.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "datasets.hpp"

namespace {

namespace fs = std::filesystem;

constexpr const char* fortunes_dir = "/usr/share/games/fortunes";

class Text final : public bp::Dataset {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .text("path", fortunes_dir,
                  "a text file, or a folder: its text files in name order (symlinks and files holding a 0 byte are "
                  "skipped); relative paths start at the experiment file's folder")
            .integer("context", 64, 1, 1 << 16, "bytes per sample: the positions the model predicts")
            .integer("stride", 0, 0, 1 << 16, "bytes from one window's start to the next; 0: context (no overlap)")
            .number("validation", 0.1, 0.0, 0.5, "fraction at the end of each file held out for validation");
    }
    explicit Text(const bp::Params& p)
        : path_(p.text("path")),
          context_(p.integer("context")),
          stride_(p.integer("stride") > 0 ? p.integer("stride") : p.integer("context")),
          validation_(p.number("validation")) {}

    bp::Data load(const bp::DataContext& ctx) const override {
        fs::path path = path_;
        if (path.is_relative() && !ctx.base_dir.empty()) path = fs::path(ctx.base_dir) / path;
        std::string train, held_out;
        for (const fs::path& file : files(path)) {
            const std::string bytes = read(file);
            const auto cut = bytes.size() - std::size_t(double(bytes.size()) * validation_);
            train.append(bytes, 0, cut);
            held_out.append(bytes, cut);
        }
        bp::Data d;
        d.input = bp::Shape{context_};
        d.target = {context_, 256};
        d.train = windows(train, "training", path);
        if (validation_ > 0) d.validation = windows(held_out, "validation", path);
        return d;
    }

private:
    std::vector<fs::path> files(const fs::path& path) const {
        std::error_code ec;
        if (!fs::exists(path, ec)) {
            std::string msg = "text: " + path.string() + " does not exist";
            if (path_ == fortunes_dir) msg += ": install Debian's fortunes package (apt-get install fortunes)";
            throw bp::Error(msg + ", or set data.path to a text file or a folder of them");
        }
        if (!fs::is_directory(path, ec)) return {path};
        std::vector<fs::path> out;
        for (const auto& entry : fs::directory_iterator(path, ec))
            if (entry.is_regular_file(ec) && !entry.is_symlink(ec) && is_text(entry.path())) out.push_back(entry.path());
        if (out.empty()) throw bp::Error("text: " + path.string() + " holds no text file");
        std::sort(out.begin(), out.end());
        return out;
    }

    static std::string read(const fs::path& file) {
        std::ifstream in(file, std::ios::binary);
        if (!in) throw bp::Error("text: cannot open " + file.string());
        return std::string(std::istreambuf_iterator<char>(in), {});
    }

    static bool is_text(const fs::path& file) { return read(file).find('\0') == std::string::npos; }

    // Windows at 0, stride, 2 stride, ... that fit with their next byte.
    bp::Split windows(const std::string& bytes, const char* which, const fs::path& path) const {
        const int64_t size = int64_t(bytes.size());
        if (size < context_ + 1)
            throw bp::Error("text: the " + std::string(which) + " text of " + path.string() + " is " + std::to_string(size) +
                            " bytes; a window of context " + std::to_string(context_) + " needs " +
                            std::to_string(context_ + 1) + " (a smaller context or validation, or more text)");
        const int64_t count = (size - context_ - 1) / stride_ + 1;
        bp::Split s{bp::Matrix(count, context_), bp::Matrix(count, context_)};
        for (int64_t w = 0; w < count; ++w)
            for (int64_t t = 0; t < context_; ++t) {
                s.x(w, t) = float(static_cast<unsigned char>(bytes[std::size_t(w * stride_ + t)]));
                s.y(w, t) = float(static_cast<unsigned char>(bytes[std::size_t(w * stride_ + t + 1)]));
            }
        return s;
    }

    std::string path_;
    int64_t context_, stride_;
    double validation_;
};

}  // namespace

void register_text_dataset(bp::Manifest& manifest) {
    manifest.dataset<Text>("text", "bytes of text files as next-byte prediction (character language models)",
                           Text::schema());
}
