// csv: numeric feature columns and one label column from a text file.
#include <backplane/backplane.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

#include "datasets.hpp"

namespace {

class Csv final : public bp::Dataset {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .text("path", "", "training file; relative paths start at the experiment file's folder")
            .text("test_path", "", "optional test file with the same columns")
            .integer("label_column", -1, -1000000, 1000000, "column of the label; negative counts from the end")
            .boolean("header", true, "the first line names the columns and is skipped")
            .choice("task", "classification", {"classification", "regression"},
                    "classification: labels are class indices 0..K-1; regression: any number");
    }
    explicit Csv(const bp::Params& p)
        : path_(p.text("path")),
          test_path_(p.text("test_path")),
          label_column_(p.integer("label_column")),
          header_(p.boolean("header")),
          classification_(p.text("task") == "classification") {
        if (path_.empty()) throw bp::Error("csv needs 'path': the file to read");
    }

    bp::Data load(const bp::DataContext& ctx) const override {
        bp::Data d;
        d.train = read(resolve(path_, ctx));
        if (!test_path_.empty()) d.test = read(resolve(test_path_, ctx));
        d.input = bp::Shape{d.train.x.cols()};
        d.target.columns = 1;
        if (classification_) {
            float top = d.train.y.maxCoeff();
            if (d.test) top = std::max(top, d.test->y.maxCoeff());
            d.target.classes = std::max<int64_t>(2, int64_t(top) + 1);
        }
        if (d.test && d.test->x.cols() != d.train.x.cols())
            throw bp::Error("csv: " + test_path_ + " has " + std::to_string(d.test->x.cols() + 1) +
                            " columns, the training file " + std::to_string(d.train.x.cols() + 1));
        return d;
    }

private:
    static std::string resolve(const std::string& path, const bp::DataContext& ctx) {
        if (path.empty() || path[0] == '/' || ctx.base_dir.empty()) return path;
        return ctx.base_dir + "/" + path;
    }

    bp::Split read(const std::string& path) const {
        std::ifstream in(path);
        if (!in) throw bp::Error("csv: cannot open " + path);
        std::vector<std::vector<float>> rows;
        std::string line;
        int64_t line_no = 0;
        while (std::getline(in, line)) {
            ++line_no;
            if ((header_ && line_no == 1) || line.find_first_not_of(" \t\r") == std::string::npos) continue;
            rows.push_back(parse(line, path, line_no));
            if (rows.back().size() != rows.front().size())
                throw bp::Error(path + ":" + std::to_string(line_no) + ": " + std::to_string(rows.back().size()) +
                                " columns, expected " + std::to_string(rows.front().size()) + " like the first row");
        }
        if (rows.empty()) throw bp::Error("csv: " + path + " has no data rows");
        const int64_t cols = int64_t(rows.front().size());
        if (cols < 2) throw bp::Error("csv: " + path + " needs at least one feature column and a label column");
        const int64_t label = label_column_ < 0 ? cols + label_column_ : label_column_;
        if (label < 0 || label >= cols)
            throw bp::Error("csv: label_column " + std::to_string(label_column_) + " is outside the " +
                            std::to_string(cols) + " columns of " + path);

        bp::Split s{bp::Matrix(int64_t(rows.size()), cols - 1), bp::Matrix(int64_t(rows.size()), 1)};
        for (std::size_t r = 0; r < rows.size(); ++r) {
            for (int64_t c = 0, f = 0; c < cols; ++c) {
                if (c == label) s.y(int64_t(r), 0) = rows[r][c];
                else s.x(int64_t(r), f++) = rows[r][c];
            }
            const float y = s.y(int64_t(r), 0);
            if (classification_ && (y < 0 || y != std::floor(y) || y > 65535))
                throw bp::Error(path + ": row " + std::to_string(r + 1) + ": label " + std::to_string(y) +
                                " is not a class index (0, 1, 2, ...); for numeric targets set task: regression");
        }
        return s;
    }

    static std::vector<float> parse(const std::string& line, const std::string& path, int64_t line_no) {
        std::vector<float> out;
        std::stringstream ss(line);
        std::string cell;
        while (std::getline(ss, cell, ',')) {
            char* end = nullptr;
            const float v = std::strtof(cell.c_str(), &end);
            if (end == cell.c_str() || cell.find_first_not_of(" \t\r", std::size_t(end - cell.c_str())) != std::string::npos)
                throw bp::Error(path + ":" + std::to_string(line_no) + ": '" + cell + "' is not a number");
            if (!std::isfinite(v))
                throw bp::Error(path + ":" + std::to_string(line_no) + ": '" + cell + "' is not a finite number");
            out.push_back(v);
        }
        return out;
    }

    std::string path_, test_path_;
    int64_t label_column_;
    bool header_, classification_;
};

}  // namespace

void register_csv_dataset(bp::Manifest& manifest) {
    manifest.dataset<Csv>("csv", "numeric feature columns and a label column from a CSV file", Csv::schema());
}
