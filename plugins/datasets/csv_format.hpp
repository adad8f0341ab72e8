// The csv dataset's file format, apart from the dataset so that the parsing can be
// tested and fuzzed from text (tests/fuzz/fuzz_csv.cpp).
#pragma once

#include <backplane/components.hpp>

#include <cstdint>
#include <istream>
#include <string>

namespace datasets {

struct CsvOptions {
    int64_t label_column = -1;   // negative counts from the end
    bool header = true;          // the first line names the columns and is skipped
    bool classification = true;  // labels must be class indices 0..65535
};

// Every row of `in`: the label column as y, the others as x. `name` names the
// source in messages. Throws bp::Error on a cell that is not a finite number, rows
// of different lengths, no data rows, a label column outside the rows, or (for
// classification) a label that is not a class index.
bp::Split parse_csv(std::istream& in, const std::string& name, const CsvOptions& options);

// The same from a file.
bp::Split read_csv(const std::string& path, const CsvOptions& options);

}  // namespace datasets
