// The idx dataset on purpose-built files, good and broken, and a small real
// Fashion-MNIST run (the full-accuracy runs are experiments, not tests).
#include "model/experiment.hpp"
#include "helpers.hpp"
#include "train/run.hpp"

#include <zlib.h>

#include <sstream>

namespace fs = std::filesystem;

namespace {

// An IDX file of unsigned bytes: magic 00 00 08 <dims>, big-endian sizes, data.
std::string idx_bytes(const std::vector<int>& dims, const std::vector<unsigned char>& data) {
    std::string s = {0, 0, 8, char(dims.size())};
    for (int d : dims) s += {char(d >> 24), char(d >> 16), char(d >> 8), char(d)};
    s.append(data.begin(), data.end());
    return s;
}

void write_gz(const fs::path& path, const std::string& bytes) {
    gzFile f = gzopen(path.c_str(), "wb");
    REQUIRE(f);
    REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
    gzclose(f);
}

std::vector<unsigned char> pixels(int n) {
    std::vector<unsigned char> p;
    for (int i = 0; i < n; ++i) p.push_back(static_cast<unsigned char>(i * 37 % 256));
    return p;
}

// Loads the idx dataset from `dir` with the given files (test files: none).
bp::Data load(const fs::path& dir, const std::string& images, const std::string& labels,
              const std::string& normalize = "scale") {
    auto& registry = test::builtin_registry();
    bp::Params p = bp::Params::defaults(registry.get(bp::Kind::dataset, "idx").info->schema);
    p.set("path", dir.string());
    p.set("train_images", images);
    p.set("train_labels", labels);
    p.set("test_images", std::string());
    p.set("normalize", normalize);
    return registry.create<bp::Dataset>("idx", p)->load({1, dir.string()});
}

}  // namespace

TEST_CASE("idx reads images and labels, gzipped or not", "[idx]") {
    const auto dir = test::temp_dir("idx-good");
    const auto images = idx_bytes({3, 2, 2}, pixels(12));
    const auto labels = idx_bytes({3}, {2, 0, 1});
    test::write_file(dir / "images.idx", images);
    test::write_file(dir / "labels.idx", labels);
    write_gz(dir / "images.idx.gz", images);
    write_gz(dir / "labels.idx.gz", labels);
    for (const std::string suffix : {"", ".gz"}) {
        const auto d = load(dir, "images.idx" + suffix, "labels.idx" + suffix);
        CHECK(d.input == bp::Shape{1, 2, 2});
        CHECK(d.target.classes == 3);
        REQUIRE(d.train.x.rows() == 3);
        CHECK(d.train.x(1, 2) == Approx(float(6 * 37 % 256) / 255.0f));
        CHECK(d.train.y(0, 0) == 2);
        CHECK_FALSE(d.test);
    }
    // Standardized: mean 0, standard deviation 1 over the training pixels.
    const auto s = load(dir, "images.idx", "labels.idx", "standardize");
    CHECK(s.train.x.mean() == Approx(0.0).margin(1e-6));
    CHECK(std::sqrt(s.train.x.array().square().mean()) == Approx(1.0).epsilon(1e-5));
}

TEST_CASE("idx refuses broken files, naming them", "[idx]") {
    const auto dir = test::temp_dir("idx-bad");
    const auto good_images = idx_bytes({3, 2, 2}, pixels(12));
    test::write_file(dir / "labels.idx", idx_bytes({3}, {0, 1, 2}));
    auto error_with = [&](const std::string& name, const std::string& bytes) {
        test::write_file(dir / name, bytes);
        return test::error_of([&] { load(dir, name, "labels.idx"); });
    };
    std::string wrong_magic = good_images;
    wrong_magic[2] = 0x0D;   // floats: not bytes
    CHECK_THAT(error_with("magic.idx", wrong_magic),
               Catch::Contains("magic.idx has magic number 00 00 0d 03") && Catch::Contains("not an IDX file"));
    CHECK_THAT(error_with("truncated.idx", good_images.substr(0, good_images.size() - 5)),
               Catch::Contains("truncated.idx is truncated: its header declares 12 bytes of data, the file holds 7"));
    CHECK_THAT(error_with("header.idx", good_images.substr(0, 6)), Catch::Contains("truncated inside its header"));
    CHECK_THAT(error_with("long.idx", good_images + "xx"), Catch::Contains("long.idx is longer than its header"));
    CHECK_THAT(error_with("count.idx", idx_bytes({4, 2, 2}, pixels(16))),
               Catch::Contains("count.idx holds 4 images but labels.idx holds 3 labels"));
    CHECK_THAT(error_with("flat.idx", idx_bytes({3}, pixels(3))), Catch::Contains("images need (N, H, W)"));
    CHECK_THAT(error_with("short.idx", "ab"), Catch::Contains("too short for an IDX header"));
    // A gzip stream cut in half.
    std::string gz;
    {
        write_gz(dir / "whole.gz", idx_bytes({3, 2, 2}, pixels(12)));
        gz = test::read_file(dir / "whole.gz");
    }
    CHECK_THAT(error_with("cut.gz", gz.substr(0, gz.size() / 2)), Catch::Contains("cut.gz"));
    CHECK_THAT(test::error_of([&] { load(dir, "missing.idx", "labels.idx"); }),
               Catch::Contains("missing.idx does not exist"));
}

TEST_CASE("idx refuses a header that declares more than the file holds without allocating it", "[idx]") {
    const auto dir = test::temp_dir("idx-huge");
    test::write_file(dir / "labels.idx", idx_bytes({3}, {0, 1, 2}));
    auto error_with = [&](const std::vector<int>& dims, int bytes) {
        test::write_file(dir / "images.idx", idx_bytes(dims, pixels(bytes)));
        return test::error_of([&] { load(dir, "images.idx", "labels.idx"); });
    };
    // 64 GiB declared, 12 bytes there: the data is read as it comes, not allocated first.
    CHECK_THAT(error_with({65536, 65536, 16}, 12),
               Catch::Contains("images.idx is truncated: its header declares 68719476736 bytes of data, the file holds 12"));
    // 2^12 * 2^24 * 2^28 = 2^64 wraps around to 0 in 64 bits: refused, not read as an empty array.
    CHECK_THAT(error_with({1 << 12, 1 << 24, 1 << 28}, 0), Catch::Contains("images.idx declares more than 64 GiB of data"));
    CHECK_THAT(error_with({-1, -1, 16}, 0), Catch::Contains("images.idx declares more than 64 GiB of data"));
}

TEST_CASE("a missing Fashion-MNIST file names the Debian package", "[idx]") {
    auto& registry = test::builtin_registry();
    bp::Params p = bp::Params::defaults(registry.get(bp::Kind::dataset, "idx").info->schema);
    p.set("train_images", std::string("no-such-file.gz"));
    const auto msg = test::error_of([&] { registry.create<bp::Dataset>("idx", p)->load({1, ""}); });
    CHECK_THAT(msg, Catch::Contains("/usr/share/datasets/fashion-mnist/no-such-file.gz does not exist") &&
                        Catch::Contains("dataset-fashion-mnist"));
}

TEST_CASE("a small Fashion-MNIST subset trains and is tested every epoch", "[idx][e2e]") {
    auto& registry = test::builtin_registry();
    const auto e = bp::load_experiment(fs::path(BACKPLANE_EXPERIMENTS) / "fashion_mnist_mlp.yaml",
                                       {"data.limit=4000", "data.test_limit=2000", "train.epochs=2"}, registry);
    const auto r = test::run_quietly(e, test::temp_dir("fashion-small"));
    REQUIRE(r.history.size() == 2);
    CHECK(r.history.back().test.accuracy > 0.75);   // ten classes: chance is 0.1
    CHECK(r.history.back().test.loss < r.history.front().test.loss * 1.2);
    CHECK(r.history.back().samples == 4000);
    const auto csv = test::read_file(r.dir / "metrics.csv");
    CHECK(csv.find(",,,,") == std::string::npos);   // no validation split: only its two columns empty
}
