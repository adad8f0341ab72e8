// The built-in learning-rate schedules: the rate of epoch e (1-based) of E, from
// the optimizer's lr (the base), as PyTorch's lr_scheduler stepped once per epoch.
#include <backplane/backplane.hpp>

#include <cmath>

namespace {

struct Constant final : bp::Schedule {
    double learning_rate(double base, int64_t, int64_t) const override { return base; }
};

// base * gamma^floor((e - 1) / step_size)
class Step final : public bp::Schedule {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .integer("step_size", 10, 1, 1000000, "epochs between decays")
            .number("gamma", 0.1, 0.0, 1.0, "factor applied at each decay");
    }
    explicit Step(const bp::Params& p) : step_(p.integer("step_size")), gamma_(p.number("gamma")) {}
    double learning_rate(double base, int64_t e, int64_t) const override {
        return base * std::pow(gamma_, double((e - 1) / step_));
    }

private:
    int64_t step_;
    double gamma_;
};

// base * gamma^(e - 1)
class Exponential final : public bp::Schedule {
public:
    static bp::Schema schema() { return bp::Schema().number("gamma", 0.9, 0.0, 1.0, "factor applied every epoch"); }
    explicit Exponential(const bp::Params& p) : gamma_(p.number("gamma")) {}
    double learning_rate(double base, int64_t e, int64_t) const override { return base * std::pow(gamma_, double(e - 1)); }

private:
    double gamma_;
};

// Linear warmup over `warmup` epochs, then a half cosine from base to base * min_factor
// at the last epoch (Loshchilov & Hutter's SGDR without restarts).
class Cosine final : public bp::Schedule {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .number("min_factor", 0.0, 0.0, 1.0, "the last epoch's rate as a fraction of the base")
            .integer("warmup", 0, 0, 1000000, "epochs of linear warmup from base / (warmup + 1) first");
    }
    explicit Cosine(const bp::Params& p) : min_(p.number("min_factor")), warmup_(p.integer("warmup")) {}
    double learning_rate(double base, int64_t e, int64_t epochs) const override {
        if (e <= warmup_) return base * double(e) / double(warmup_ + 1);
        const int64_t span = epochs - warmup_ - 1;
        const double t = span > 0 ? double(e - warmup_ - 1) / double(span) : 0.0;   // 0 .. 1
        return base * (min_ + (1.0 - min_) * 0.5 * (1.0 + std::cos(3.14159265358979323846 * t)));
    }

private:
    double min_;
    int64_t warmup_;
};

}  // namespace

BACKPLANE_PLUGIN("backplane-schedules", "0.1.0") {
    manifest.schedule<Constant>("constant", "the optimizer's lr every epoch")
        .schedule<Step>("step", "lr * gamma^floor((epoch - 1) / step_size)", Step::schema())
        .schedule<Exponential>("exponential", "lr * gamma^(epoch - 1)", Exponential::schema())
        .schedule<Cosine>("cosine", "optional linear warmup, then a half cosine from lr to lr * min_factor",
                          Cosine::schema());
}
