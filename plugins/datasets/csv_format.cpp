#include "csv_format.hpp"

#include <backplane/error.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <vector>

namespace datasets {

namespace {

// Every cell between commas, an empty one after a trailing comma included
// (std::getline drops it: "1,2," would read as two columns).
std::vector<float> parse_line(const std::string& line, const std::string& name, int64_t line_no) {
    std::vector<float> out;
    for (std::size_t start = 0;;) {
        const std::size_t comma = line.find(',', start);
        const std::string cell = line.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        char* end = nullptr;
        const float v = std::strtof(cell.c_str(), &end);
        if (end == cell.c_str() || cell.find_first_not_of(" \t\r", std::size_t(end - cell.c_str())) != std::string::npos)
            throw bp::Error(name + ":" + std::to_string(line_no) + ": '" + cell + "' is not a number");
        if (!std::isfinite(v))
            throw bp::Error(name + ":" + std::to_string(line_no) + ": '" + cell + "' is not a finite number");
        out.push_back(v);
        if (comma == std::string::npos) return out;
        start = comma + 1;
    }
}

}  // namespace

bp::Split parse_csv(std::istream& in, const std::string& name, const CsvOptions& options) {
    std::vector<std::vector<float>> rows;
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if ((options.header && line_no == 1) || line.find_first_not_of(" \t\r") == std::string::npos) continue;
        rows.push_back(parse_line(line, name, line_no));
        if (rows.back().size() != rows.front().size())
            throw bp::Error(name + ":" + std::to_string(line_no) + ": " + std::to_string(rows.back().size()) +
                            " columns, expected " + std::to_string(rows.front().size()) + " like the first row");
    }
    if (rows.empty()) throw bp::Error("csv: " + name + " has no data rows");
    const int64_t cols = int64_t(rows.front().size());
    if (cols < 2) throw bp::Error("csv: " + name + " needs at least one feature column and a label column");
    const int64_t label = options.label_column < 0 ? cols + options.label_column : options.label_column;
    if (label < 0 || label >= cols)
        throw bp::Error("csv: label_column " + std::to_string(options.label_column) + " is outside the " +
                        std::to_string(cols) + " columns of " + name);

    bp::Split s{bp::Matrix(int64_t(rows.size()), cols - 1), bp::Matrix(int64_t(rows.size()), 1)};
    for (std::size_t r = 0; r < rows.size(); ++r) {
        for (int64_t c = 0, f = 0; c < cols; ++c) {
            if (c == label) s.y(int64_t(r), 0) = rows[r][c];
            else s.x(int64_t(r), f++) = rows[r][c];
        }
        const float y = s.y(int64_t(r), 0);
        if (options.classification && (y < 0 || y != std::floor(y) || y > 65535))
            throw bp::Error(name + ": row " + std::to_string(r + 1) + ": label " + std::to_string(y) +
                            " is not a class index (0, 1, 2, ...); for numeric targets set task: regression");
    }
    return s;
}

bp::Split read_csv(const std::string& path, const CsvOptions& options) {
    std::ifstream in(path);
    if (!in) throw bp::Error("csv: cannot open " + path);
    return parse_csv(in, path, options);
}

}  // namespace datasets
