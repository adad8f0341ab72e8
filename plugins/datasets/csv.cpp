// csv: numeric feature columns and one label column from a text file.
#include <backplane/backplane.hpp>

#include "csv_format.hpp"
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
        return datasets::read_csv(path, {label_column_, header_, classification_});
    }

    std::string path_, test_path_;
    int64_t label_column_;
    bool header_, classification_;
};

}  // namespace

void register_csv_dataset(bp::Manifest& manifest) {
    manifest.dataset<Csv>("csv", "numeric feature columns and a label column from a CSV file", Csv::schema());
}
