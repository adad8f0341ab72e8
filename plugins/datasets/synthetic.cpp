// Synthetic datasets, generated from the experiment's seed with the counter-based
// generator: the same seed gives the same data on any machine.
#include <backplane/backplane.hpp>

#include <cmath>

#include "datasets.hpp"

namespace {

constexpr double pi = 3.14159265358979323846;

// The four points of XOR, each repeated `repeat` times: label = (x0 > 0.5) != (x1 > 0.5).
class Xor final : public bp::Dataset {
public:
    static bp::Schema schema() {
        return bp::Schema().integer("repeat", 1, 1, 1 << 20, "copies of the four points in the training set");
    }
    explicit Xor(const bp::Params& p) : repeat_(p.integer("repeat")) {}

    bp::Data load(const bp::DataContext&) const override {
        bp::Data d{bp::Shape{2}, {1, 2}, {bp::Matrix(4 * repeat_, 2), bp::Matrix(4 * repeat_, 1)}, {}, {}};
        for (int64_t r = 0; r < 4 * repeat_; ++r) {
            const int a = int(r % 4) >> 1, b = int(r % 4) & 1;
            d.train.x.row(r) << float(a), float(b);
            d.train.y(r, 0) = float(a ^ b);
        }
        return d;
    }

private:
    int64_t repeat_;
};

// Two interleaved spirals (Lang & Witbrock 1988), one per class, in [-1, 1]^2.
// Point i of n per class sits at radius t = (i + 0.5) / n and angle 2 pi turns t
// (+ pi for class 1), plus Gaussian noise of the given standard deviation.
class TwoSpirals final : public bp::Dataset {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .integer("samples", 1000, 4, 1 << 24, "points in all, half per class")
            .number("turns", 1.5, 0.1, 10.0, "turns of each spiral")
            .number("noise", 0.02, 0.0, 1.0, "standard deviation of the Gaussian noise on each coordinate");
    }
    explicit TwoSpirals(const bp::Params& p)
        : samples_(p.integer("samples") / 2 * 2), turns_(p.number("turns")), noise_(p.number("noise")) {}

    bp::Data load(const bp::DataContext& ctx) const override {
        const bp::Random rng = bp::Random(ctx.seed).derive("two_spirals");
        const int64_t per_class = samples_ / 2;
        bp::Data d{bp::Shape{2}, {1, 2}, {bp::Matrix(samples_, 2), bp::Matrix(samples_, 1)}, {}, {}};
        for (int64_t r = 0; r < samples_; ++r) {
            const int64_t cls = r % 2, i = r / 2;
            const double t = (double(i) + 0.5) / double(per_class);
            const double angle = 2.0 * pi * turns_ * t + pi * double(cls);
            d.train.x(r, 0) = float(t * std::cos(angle) + noise_ * rng.normal(2 * r));
            d.train.x(r, 1) = float(t * std::sin(angle) + noise_ * rng.normal(2 * r + 1));
            d.train.y(r, 0) = float(cls);
        }
        return d;
    }

private:
    int64_t samples_;
    double turns_, noise_;
};

// y = sin(x) + noise for x uniform in [-range, range]: a one-dimensional regression.
class Sine final : public bp::Dataset {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .integer("samples", 1000, 1, 1 << 24, "number of points")
            .number("range", pi, 0.0, 1e6, "x is drawn uniformly from [-range, range]")
            .number("noise", 0.0, 0.0, 1e3, "standard deviation of the Gaussian noise on y");
    }
    explicit Sine(const bp::Params& p)
        : samples_(p.integer("samples")), range_(p.number("range")), noise_(p.number("noise")) {}

    bp::Data load(const bp::DataContext& ctx) const override {
        const bp::Random rng = bp::Random(ctx.seed).derive("sine");
        bp::Data d{bp::Shape{1}, {1, 0}, {bp::Matrix(samples_, 1), bp::Matrix(samples_, 1)}, {}, {}};
        for (int64_t r = 0; r < samples_; ++r) {
            const double x = rng.derive("x").uniform(r, float(-range_), float(range_));
            d.train.x(r, 0) = float(x);
            d.train.y(r, 0) = float(std::sin(x) + noise_ * rng.derive("noise").normal(r));
        }
        return d;
    }

private:
    int64_t samples_;
    double range_, noise_;
};

// Gaussian inputs of any per-sample shape, labelled by a random linear teacher: a
// learnable problem for any layer (check-plugin trains every component on it).
// Targets: the argmax of `classes` teacher outputs, or `outputs` real teacher
// outputs when classes is 0.
class Gaussian final : public bp::Dataset {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .text("shape", "8", "per-sample input shape, dimensions joined by x: 8, or 3x16x16 for images")
            .integer("samples", 256, 1, 1 << 24, "number of samples")
            .integer("classes", 3, 0, 1 << 16, "classes to label; 0 for regression targets")
            .integer("outputs", 1, 1, 1 << 16, "regression targets per sample (classes: 0)")
            .integer("integers", 0, 0, 1 << 24, "> 0: inputs are integers 0..integers-1 (token ids) instead of normal values");
    }
    explicit Gaussian(const bp::Params& p)
        : input_(parse_shape(p.text("shape"))), samples_(p.integer("samples")), classes_(p.integer("classes")),
          outputs_(classes_ > 0 ? classes_ : p.integer("outputs")), integers_(p.integer("integers")) {}

    bp::Data load(const bp::DataContext& ctx) const override {
        const bp::Random rng = bp::Random(ctx.seed).derive("gaussian");
        const bp::Random teacher_rng = rng.derive("teacher"), x_rng = rng.derive("x");
        const int64_t d = input_.size();
        bp::Matrix teacher(d, outputs_);
        for (int64_t i = 0; i < teacher.size(); ++i)
            teacher.data()[i] = teacher_rng.normal(i) / float(std::sqrt(double(d)));
        bp::Data data{input_, {classes_ > 0 ? 1 : outputs_, classes_}, {bp::Matrix(samples_, d), {}}, {}, {}};
        for (int64_t i = 0; i < data.train.x.size(); ++i)
            data.train.x.data()[i] = integers_ > 0 ? float(x_rng.below(uint64_t(i), uint64_t(integers_))) : x_rng.normal(i);
        const bp::Matrix out = data.train.x * teacher;
        if (classes_ == 0) {
            data.train.y = out;
            return data;
        }
        data.train.y.resize(samples_, 1);
        for (int64_t r = 0; r < samples_; ++r) {
            Eigen::Index best = 0;
            out.row(r).maxCoeff(&best);
            data.train.y(r, 0) = float(best);
        }
        return data;
    }

private:
    static bp::Shape parse_shape(const std::string& text) {
        std::vector<int64_t> dims;
        std::size_t pos = 0;
        while (pos <= text.size()) {
            const std::size_t end = std::min(text.find('x', pos), text.size());
            const std::string part = text.substr(pos, end - pos);
            if (part.empty() || part.size() > 6 || part.find_first_not_of("0123456789") != std::string::npos ||
                std::stoll(part) == 0)
                throw bp::Error("shape '" + text + "' is not a list of positive sizes joined by x, like 3x16x16");
            dims.push_back(std::stoll(part));
            pos = end + 1;
        }
        return bp::Shape(std::move(dims));
    }

    bp::Shape input_;
    int64_t samples_, classes_, outputs_, integers_;
};

}  // namespace

void register_synthetic_datasets(bp::Manifest& manifest) {
    manifest.dataset<Xor>("xor", "the four points of XOR (2 inputs, 2 classes)", Xor::schema())
        .dataset<TwoSpirals>("two_spirals", "two interleaved spirals (2 inputs, 2 classes)", TwoSpirals::schema())
        .dataset<Sine>("sine", "y = sin(x) + noise (1 input, regression)", Sine::schema())
        .dataset<Gaussian>("gaussian", "Gaussian inputs of any shape labelled by a random linear teacher",
                           Gaussian::schema());
}
