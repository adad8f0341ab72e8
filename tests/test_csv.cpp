// The csv dataset on purpose-built files: what it reads, and what it refuses by name.
#include "helpers.hpp"

namespace fs = std::filesystem;

namespace {

// Loads the csv dataset from `text` written to `dir`/data.csv.
bp::Data load(const fs::path& dir, const std::string& text, const std::string& task = "classification") {
    test::write_file(dir / "data.csv", text);
    auto& registry = test::builtin_registry();
    bp::Params p = bp::Params::defaults(registry.get(bp::Kind::dataset, "csv").info->schema);
    p.set("path", std::string("data.csv"));
    p.set("task", task);
    return registry.create<bp::Dataset>("csv", p)->load({1, dir.string()});
}

}  // namespace

TEST_CASE("csv reads features and the label column", "[csv]") {
    const auto dir = test::temp_dir("csv-good");
    const auto d = load(dir, "a,b,label\n0.5,1e-3,1\r\n 2 ,\t-4,0\n\n");
    REQUIRE(d.train.x.rows() == 2);
    CHECK(d.input == bp::Shape{2});
    CHECK(d.target.classes == 2);
    CHECK(d.train.x(1, 0) == 2);
    CHECK(d.train.x(1, 1) == -4);
    CHECK(d.train.y(0, 0) == 1);
}

TEST_CASE("csv refuses an empty cell, the last one included", "[csv]") {
    // A trailing comma is an empty last cell, not one column fewer: read as one column
    // fewer, a file whose labels are all missing would train on a feature as its label.
    const auto dir = test::temp_dir("csv-empty");
    auto error_of = [&](const std::string& text) { return test::error_of([&] { load(dir, text, "regression"); }); };
    CHECK_THAT(error_of("a,b,label\n0,0,\n0,1,\n"), Catch::Contains("data.csv:2: '' is not a number"));
    CHECK_THAT(error_of("a,b,label\n0,0,1\n0,1, \r\n"), Catch::Contains("data.csv:3: ' \r' is not a number"));
    CHECK_THAT(error_of("a,b,label\n0,,1\n"), Catch::Contains("data.csv:2: '' is not a number"));
    CHECK_THAT(error_of("a,b,label\n,0,1\n"), Catch::Contains("data.csv:2: '' is not a number"));
}
