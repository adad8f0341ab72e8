// idx: the IDX format of MNIST and Fashion-MNIST (gzipped or not), as images
// (N, H, W) or (N, C, H, W) of unsigned bytes and labels (N) of class indices.
// Defaults point at Debian's dataset-fashion-mnist package.
#include <backplane/backplane.hpp>

#include <cmath>
#include <filesystem>

#include "datasets.hpp"
#include "idx_format.hpp"

namespace {

namespace fs = std::filesystem;

using datasets::IdxArray;
using datasets::read_idx;

class Idx final : public bp::Dataset {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .text("path", datasets::fashion_mnist_dir,
                  "folder of the files; relative paths start at the experiment file's folder")
            .text("train_images", "train-images-idx3-ubyte.gz", "training images, (N, H, W) or (N, C, H, W) bytes")
            .text("train_labels", "train-labels-idx1-ubyte.gz", "training labels, (N) class indices")
            .text("test_images", "t10k-images-idx3-ubyte.gz", "test images; empty: no test set")
            .text("test_labels", "t10k-labels-idx1-ubyte.gz", "test labels")
            .choice("normalize", "standardize", {"scale", "standardize"},
                    "scale: pixels / 255 to [0, 1]; standardize: then subtract the training set's mean, divide by its std")
            .integer("limit", 0, 0, 1 << 30, "use only the first N training samples (0: all)")
            .integer("test_limit", 0, 0, 1 << 30, "use only the first N test samples (0: all)");
    }
    explicit Idx(const bp::Params& p)
        : dir_(p.text("path")),
          files_{p.text("train_images"), p.text("train_labels"), p.text("test_images"), p.text("test_labels")},
          standardize_(p.text("normalize") == "standardize"),
          limit_(p.integer("limit")),
          test_limit_(p.integer("test_limit")) {}

    bp::Data load(const bp::DataContext& ctx) const override {
        fs::path dir = dir_;
        if (dir.is_relative() && !ctx.base_dir.empty()) dir = fs::path(ctx.base_dir) / dir;
        bp::Data d;
        d.train = read_split(dir / files_[0], dir / files_[1], limit_, d.input);
        if (!files_[2].empty()) {
            bp::Shape test_shape;
            d.test = read_split(dir / files_[2], dir / files_[3], test_limit_, test_shape);
            if (test_shape != d.input)
                throw bp::Error("idx: test images are " + test_shape.str() + ", training images " + d.input.str());
        }
        int64_t top = int64_t(d.train.y.maxCoeff());
        if (d.test) top = std::max(top, int64_t(d.test->y.maxCoeff()));
        d.target = {1, std::max<int64_t>(2, top + 1)};
        if (standardize_) {
            // One mean and std over every training pixel (as torchvision's Normalize),
            // in double so the statistics do not depend on summation order.
            const double mean = d.train.x.cast<double>().mean();
            const double var = (d.train.x.cast<double>().array() - mean).square().mean();
            const float m = float(mean), inv = float(1.0 / std::sqrt(std::max(var, 1e-12)));
            d.train.x = (d.train.x.array() - m) * inv;
            if (d.test) d.test->x = (d.test->x.array() - m) * inv;
        }
        return d;
    }

private:
    static bp::Split read_split(const fs::path& images_path, const fs::path& labels_path, int64_t limit,
                                bp::Shape& shape) {
        const IdxArray images = read_idx(images_path);
        const IdxArray labels = read_idx(labels_path);
        if (images.dims.size() < 2)
            throw bp::Error("idx: " + images_path.string() + " has " + std::to_string(images.dims.size()) +
                            " dimension(s); images need (N, H, W) or (N, C, H, W)");
        if (labels.dims.size() != 1)
            throw bp::Error("idx: " + labels_path.string() + " has " + std::to_string(labels.dims.size()) +
                            " dimensions; labels need one (N)");
        if (images.dims[0] != labels.dims[0])
            throw bp::Error("idx: " + images_path.filename().string() + " holds " + std::to_string(images.dims[0]) +
                            " images but " + labels_path.filename().string() + " holds " +
                            std::to_string(labels.dims[0]) + " labels");
        // (N, H, W) images get one channel: layers see them as C*H*W rows.
        shape = bp::Shape(std::vector<int64_t>(images.dims.begin() + 1, images.dims.end()));
        if (shape.rank() == 2) shape.dims.insert(shape.dims.begin(), 1);
        const int64_t n = limit > 0 ? std::min(limit, images.dims[0]) : images.dims[0];
        const int64_t width = shape.size();
        bp::Split s{bp::Matrix(n, width), bp::Matrix(n, 1)};
        s.x = Eigen::Map<const Eigen::Matrix<unsigned char, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
                  images.data.data(), n, width)
                  .cast<float>() *
              (1.0f / 255.0f);
        for (int64_t i = 0; i < n; ++i) s.y(i, 0) = float(labels.data[std::size_t(i)]);
        return s;
    }

    std::string dir_;
    std::string files_[4];
    bool standardize_;
    int64_t limit_, test_limit_;
};

}  // namespace

void register_idx_dataset(bp::Manifest& manifest) {
    manifest.dataset<Idx>("idx", "IDX image files (MNIST, Fashion-MNIST), gzipped or not", Idx::schema());
}
