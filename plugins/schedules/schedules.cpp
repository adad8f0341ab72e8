// The built-in learning-rate schedules: the rate of epoch e (1-based) of E, from
// the optimizer's lr (the base), as PyTorch's lr_scheduler stepped once per epoch.
// Linear warmup in front of any of them is the core's (optimizer.schedule.warmup).
#include <backplane/backplane.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace {

struct Constant final : bp::Schedule {
    double learning_rate(double base, int64_t, int64_t, std::span<const bp::EpochMetrics>) const override {
        return base;
    }
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
    double learning_rate(double base, int64_t e, int64_t, std::span<const bp::EpochMetrics>) const override {
        return base * std::pow(gamma_, double((e - 1) / step_));
    }

private:
    int64_t step_;
    double gamma_;
};

// base * gamma^(number of milestones m with m < e): decays after each listed epoch.
class MultiStep final : public bp::Schedule {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .text("milestones", "30,60,90", "epochs after which the rate decays, increasing, comma-separated")
            .number("gamma", 0.1, 0.0, 1.0, "factor applied at each milestone");
    }
    explicit MultiStep(const bp::Params& p) : milestones_(parse(p.text("milestones"))), gamma_(p.number("gamma")) {}
    double learning_rate(double base, int64_t e, int64_t, std::span<const bp::EpochMetrics>) const override {
        int passed = 0;
        for (int64_t m : milestones_) passed += m < e;
        return base * std::pow(gamma_, double(passed));
    }

private:
    static std::vector<int64_t> parse(const std::string& text) {
        std::vector<int64_t> out;
        std::size_t pos = 0;
        while (pos <= text.size()) {
            const std::size_t end = std::min(text.find(',', pos), text.size());
            std::string part = text.substr(pos, end - pos);
            part.erase(0, part.find_first_not_of(' '));
            part.erase(part.find_last_not_of(' ') + 1);
            const bool number = !part.empty() && part.size() < 10 && part.find_first_not_of("0123456789") == std::string::npos;
            if (!number || std::stoll(part) == 0 || (!out.empty() && std::stoll(part) <= out.back()))
                throw bp::Error("milestones '" + text + "' must be increasing epoch numbers separated by commas, like 30,60,90");
            out.push_back(std::stoll(part));
            pos = end + 1;
        }
        return out;
    }

    std::vector<int64_t> milestones_;
    double gamma_;
};

// base * gamma^(e - 1)
class Exponential final : public bp::Schedule {
public:
    static bp::Schema schema() { return bp::Schema().number("gamma", 0.9, 0.0, 1.0, "factor applied every epoch"); }
    explicit Exponential(const bp::Params& p) : gamma_(p.number("gamma")) {}
    double learning_rate(double base, int64_t e, int64_t, std::span<const bp::EpochMetrics>) const override {
        return base * std::pow(gamma_, double(e - 1));
    }

private:
    double gamma_;
};

// A half cosine from base at the first epoch to base * min_factor at the last
// (Loshchilov & Hutter's SGDR without restarts).
class Cosine final : public bp::Schedule {
public:
    static bp::Schema schema() {
        return bp::Schema().number("min_factor", 0.0, 0.0, 1.0, "the last epoch's rate as a fraction of the base");
    }
    explicit Cosine(const bp::Params& p) : min_(p.number("min_factor")) {}
    double learning_rate(double base, int64_t e, int64_t epochs, std::span<const bp::EpochMetrics>) const override {
        const double t = epochs > 1 ? double(e - 1) / double(epochs - 1) : 0.0;   // 0 .. 1
        return base * (min_ + (1.0 - min_) * 0.5 * (1.0 + std::cos(3.14159265358979323846 * t)));
    }

private:
    double min_;
};

// torch.optim.lr_scheduler.ReduceLROnPlateau, stepped once per epoch with the
// monitored metric, replayed over the history: after more than `patience` epochs
// without a relative improvement of `threshold`, the rate is multiplied by `factor`
// (not below min_lr), then `cooldown` epochs pass before counting again.
class ReduceOnPlateau final : public bp::Schedule {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .choice("metric", "val_loss", bp::metric_names(), "the metric watched: losses must fall, accuracies rise")
            .number("factor", 0.1, 0.0, 0.999999, "multiplies the rate on a plateau")
            .integer("patience", 10, 0, 1000000, "epochs without improvement tolerated")
            .number("threshold", 1e-4, 0.0, 1.0, "relative change that counts as an improvement")
            .integer("cooldown", 0, 0, 1000000, "epochs after a reduction before counting again")
            .number("min_lr", 0.0, 0.0, 1e3, "the rate never goes below this");
    }
    explicit ReduceOnPlateau(const bp::Params& p)
        : metric_(*bp::metric_named(p.text("metric"))),
          maximise_(!bp::lower_is_better(metric_)),
          factor_(p.number("factor")),
          patience_(p.integer("patience")),
          threshold_(p.number("threshold")),
          cooldown_(p.integer("cooldown")),
          min_lr_(p.number("min_lr")) {}

    double learning_rate(double base, int64_t, int64_t, std::span<const bp::EpochMetrics> history) const override {
        double lr = base, best = maximise_ ? -INFINITY : INFINITY;
        int64_t bad = 0, cooldown = 0;
        // Never measured (every epoch NaN, as in the core's probe before training): an
        // error. A NaN among numbers is an epoch without improvement, as in torch.
        if (!history.empty() && std::all_of(history.begin(), history.end(), [&](const auto& r) { return std::isnan(r.get(metric_)); }))
            throw bp::Error(std::string("reduce_on_plateau watches ") + bp::to_string(metric_) +
                            ", which this run does not measure; choose another metric, or add data.validation_split");
        for (const auto& epoch : history) {
            const double v = epoch.get(metric_);
            const bool better = maximise_ ? v > best * (1.0 + threshold_) : v < best * (1.0 - threshold_);
            if (better) {
                best = v;
                bad = 0;
            } else {
                ++bad;
            }
            if (cooldown > 0) {
                --cooldown;
                bad = 0;
            }
            if (bad > patience_) {
                lr = std::max(lr * factor_, min_lr_);
                cooldown = cooldown_;
                bad = 0;
            }
        }
        return lr;
    }

private:
    bp::Metric metric_;
    bool maximise_;
    double factor_;
    int64_t patience_;
    double threshold_;
    int64_t cooldown_;
    double min_lr_;
};

}  // namespace

BACKPLANE_PLUGIN("backplane-schedules", "0.2.0") {
    manifest.schedule<Constant>("constant", "the optimizer's lr every epoch")
        .schedule<Step>("step", "lr * gamma^floor((epoch - 1) / step_size)", Step::schema())
        .schedule<MultiStep>("multistep", "lr * gamma^(milestones passed)", MultiStep::schema())
        .schedule<Exponential>("exponential", "lr * gamma^(epoch - 1)", Exponential::schema())
        .schedule<Cosine>("cosine", "a half cosine from lr to lr * min_factor", Cosine::schema())
        .schedule<ReduceOnPlateau>("reduce_on_plateau", "lr * factor after each plateau of a watched metric",
                                   ReduceOnPlateau::schema());
}
