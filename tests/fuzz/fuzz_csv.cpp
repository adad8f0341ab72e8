// libFuzzer target: the csv dataset's parser (plugins/datasets/csv_format.cpp). The
// first byte picks the options (bit 0: header line, bit 1: classification), the
// second is the label column (signed), the rest is the file's text. A bp::Error is
// the expected answer to a bad file; anything else escaping, a crash or a sanitizer
// report is a finding.
#include "fuzz_support.hpp"
#include "csv_format.hpp"

#include <backplane/error.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    datasets::CsvOptions options;
    options.header = data[0] & 1;
    options.classification = data[0] & 2;
    options.label_column = int8_t(data[1]);
    std::istringstream text(std::string(reinterpret_cast<const char*>(data) + 2, size - 2));
    bp::Split s;
    try {
        s = datasets::parse_csv(text, "fuzz.csv", options);
    } catch (const bp::Error&) {
        return 0;
    }
    // What the trainer relies on: one label per row, at least one feature, all finite,
    // class indices where the task is classification.
    if (s.x.rows() != s.y.rows() || s.x.rows() < 1 || s.x.cols() < 1 || s.y.cols() != 1)
        fuzz::broken("rows and labels do not match");
    if (!s.x.allFinite() || !s.y.allFinite()) fuzz::broken("a value is not finite");
    if (options.classification)
        for (int64_t r = 0; r < s.y.rows(); ++r)
            if (s.y(r, 0) < 0 || s.y(r, 0) > 65535 || s.y(r, 0) != std::floor(s.y(r, 0))) fuzz::broken("a label is not a class");
    return 0;
}
