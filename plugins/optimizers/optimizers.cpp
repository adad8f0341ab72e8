// The built-in optimizers, with PyTorch's update rules so results can be compared.
// State is kept per parameter, in the order the trainer passes them.
#include <backplane/backplane.hpp>

#include <cmath>
#include <map>

namespace {

// Common to every optimizer: learning rate, per-parameter state tensors by slot,
// and saving/restoring them as named tensors "<slot>.<param index>".
class StatefulOptimizer : public bp::Optimizer {
public:
    double learning_rate() const override { return lr_; }
    void set_learning_rate(double lr) override { lr_ = lr; }

    std::vector<bp::NamedTensor> state() const override {
        std::vector<bp::NamedTensor> out;
        bp::Matrix step(1, 1);
        step(0, 0) = float(steps_);
        out.push_back({"step", step});
        for (std::size_t s = 0; s < slot_names_.size(); ++s)
            for (std::size_t i = 0; i < slots_[s].size(); ++i)
                out.push_back({slot_names_[s] + "." + std::to_string(i), slots_[s][i]});
        return out;
    }

    // By name, so the order the tensors come back in does not matter.
    void load_state(const std::vector<bp::NamedTensor>& state) override {
        std::map<std::string, const bp::Matrix*> by_name;
        for (const auto& t : state) by_name[t.name] = &t.value;
        if (!by_name.count("step")) throw bp::Error("optimizer state has no step count");
        steps_ = int64_t(by_name["step"]->coeff(0, 0));
        for (std::size_t s = 0; s < slot_names_.size(); ++s) {
            slots_[s].clear();
            for (std::size_t i = 0;; ++i) {
                auto it = by_name.find(slot_names_[s] + "." + std::to_string(i));
                if (it == by_name.end()) break;
                slots_[s].push_back(*it->second);
            }
        }
        const std::size_t expected = 1 + slots_.size() * (slots_.empty() ? 0 : slots_[0].size());
        if (state.size() != expected) throw bp::Error("optimizer state has unexpected tensors");
    }

protected:
    StatefulOptimizer(double lr, std::vector<std::string> slot_names)
        : lr_(lr), slot_names_(std::move(slot_names)), slots_(slot_names_.size()) {}

    // Zero-initialised state on the first step, shaped like the parameters; restored
    // state must have their shapes.
    void begin_step(std::span<bp::ParameterRef> params) {
        ++steps_;
        for (std::size_t s = 0; s < slots_.size(); ++s) {
            auto& slot = slots_[s];
            if (slot.empty()) {
                for (auto& p : params) slot.push_back(bp::Matrix::Zero(p.value.rows(), p.value.cols()));
                continue;
            }
            bool fits = slot.size() == params.size();
            for (std::size_t i = 0; fits && i < params.size(); ++i)
                fits = slot[i].rows() == params[i].value.rows() && slot[i].cols() == params[i].value.cols();
            if (!fits) throw bp::Error("optimizer state '" + slot_names_[s] + "' does not match the parameters' shapes");
        }
    }
    bp::Matrix& slot(std::size_t s, std::size_t i) { return slots_[s][i]; }

    double lr_;
    int64_t steps_ = 0;

private:
    std::vector<std::string> slot_names_;
    std::vector<std::vector<bp::Matrix>> slots_;
};

// g = grad + wd w; buf = momentum buf + (1 - dampening) g (buf = g on the first step);
// g = g + momentum buf (nesterov) or buf; w -= lr g.
class Sgd final : public StatefulOptimizer {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .number("lr", 0.01, 0.0, 1e3, "learning rate")
            .number("momentum", 0.0, 0.0, 1.0, "heavy-ball momentum factor (0 = plain SGD)")
            .number("dampening", 0.0, 0.0, 1.0, "scales the new gradient entering the momentum buffer by 1 - dampening")
            .boolean("nesterov", false, "Nesterov momentum (needs momentum > 0 and dampening 0)")
            .number("weight_decay", 0.0, 0.0, 1.0, "L2 penalty added to the gradient: g += weight_decay * w");
    }
    explicit Sgd(const bp::Params& p)
        : StatefulOptimizer(p.number("lr"), {"momentum"}),
          momentum_(float(p.number("momentum"))),
          dampening_(float(p.number("dampening"))),
          keep_(float(1.0 - p.number("dampening"))),
          nesterov_(p.boolean("nesterov")),
          weight_decay_(float(p.number("weight_decay"))) {
        if (nesterov_ && (momentum_ <= 0.0f || dampening_ != 0.0f))
            throw bp::Error("sgd: nesterov needs momentum > 0 and dampening = 0");
    }

    void step(std::span<bp::ParameterRef> params) override {
        begin_step(params);
        const float lr = float(lr_);
        for (std::size_t i = 0; i < params.size(); ++i) {
            auto w = params[i].value.array();
            const auto g = params[i].grad.array() + weight_decay_ * w;  // expression: no temporary
            if (momentum_ == 0.0f) {
                w -= lr * g;
                continue;
            }
            auto buf = slot(0, i).array();
            if (steps_ == 1) buf = g;
            else buf = momentum_ * buf + keep_ * g;
            if (nesterov_) w -= lr * (g + momentum_ * buf);
            else w -= lr * buf;
        }
    }

private:
    float momentum_, dampening_, keep_;   // keep_ = 1 - dampening, rounded once
    bool nesterov_;
    float weight_decay_;
};

// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)   (torch's form)
class Adam final : public StatefulOptimizer {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .number("lr", 0.001, 0.0, 1e3, "learning rate")
            .number("beta1", 0.9, 0.0, 0.999999, "decay of the first-moment (mean) estimate")
            .number("beta2", 0.999, 0.0, 0.999999999, "decay of the second-moment (uncentred variance) estimate")
            .number("eps", 1e-8, 0.0, 1.0, "added to the denominator for stability")
            .number("weight_decay", 0.0, 0.0, 1.0, "L2 penalty added to the gradient: g += weight_decay * w");
    }
    explicit Adam(const bp::Params& p)
        : StatefulOptimizer(p.number("lr"), {"m", "v"}),
          beta1_(p.number("beta1")),
          beta2_(p.number("beta2")),
          eps_(float(p.number("eps"))),
          weight_decay_(float(p.number("weight_decay"))) {}

    void step(std::span<bp::ParameterRef> params) override {
        begin_step(params);
        const double bc1 = 1.0 - std::pow(beta1_, double(steps_));
        const double bc2 = 1.0 - std::pow(beta2_, double(steps_));
        const float step_size = float(lr_ / bc1);
        const float inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2));
        // 1 - beta in double, then rounded: 1.0f - 0.999f would be off by 5e-5 relative.
        const float b1 = float(beta1_), b2 = float(beta2_), c1 = float(1.0 - beta1_), c2 = float(1.0 - beta2_);
        for (std::size_t i = 0; i < params.size(); ++i) {
            auto w = params[i].value.array();
            const auto g = (params[i].grad + weight_decay_ * params[i].value).array();
            auto m = slot(0, i).array();
            auto v = slot(1, i).array();
            m = b1 * m + c1 * g;
            v = b2 * v + c2 * g.square();
            w -= step_size * m / (v.sqrt() * inv_sqrt_bc2 + eps_);
        }
    }

private:
    double beta1_, beta2_;
    float eps_, weight_decay_;
};

}  // namespace

BACKPLANE_PLUGIN("backplane-optimizers", "0.1.0") {
    manifest.optimizer<Sgd>("sgd", "stochastic gradient descent with momentum, Nesterov and weight decay", Sgd::schema())
        .optimizer<Adam>("adam", "Adam with bias correction (Kingma & Ba 2015)", Adam::schema());
}
