// The built-in optimizers, with PyTorch's update rules (torch.optim 1.13; NAdam as
// 2.x, which fixed 1.13's double-counted momentum factor; Lion as its paper) so
// results can be compared. State is kept per parameter, in the order the trainer passes them.
#include <backplane/backplane.hpp>

#include <algorithm>
#include <cmath>
#include <map>

namespace {

// Adam's moment estimates, shared by adam, adamw and nadam: m = b1 m + (1 - b1) g,
// v = b2 v + (1 - b2) g^2. 1 - beta is taken in double, then rounded: 1.0f - 0.999f
// would be off by 5e-5 relative.
struct Moments {
    Moments(double beta1, double beta2)
        : b1(float(beta1)), b2(float(beta2)), c1(float(1.0 - beta1)), c2(float(1.0 - beta2)) {}
    template <class M, class V, class G>
    void update(M&& m, V&& v, const G& g) const {
        m = b1 * m + c1 * g;
        v = b2 * v + c2 * g.square();
    }
    float b1, b2, c1, c2;
};

// buf = momentum buf + (1 - dampening) g (buf = g on the first step);
// g = g + momentum buf (nesterov) or buf; w -= lr g.
class Sgd final : public bp::ElementwiseOptimizer {
public:
    static bp::Schema schema() {
        return bp::optimizer_options(bp::Schema()
                               .number("lr", 0.01, 0.0, 1e3, "learning rate")
                               .number("momentum", 0.0, 0.0, 1.0, "heavy-ball momentum factor (0 = plain SGD)")
                               .number("dampening", 0.0, 0.0, 1.0,
                                       "scales the new gradient entering the momentum buffer by 1 - dampening")
                               .boolean("nesterov", false, "Nesterov momentum (needs momentum > 0 and dampening 0)"));
    }
    explicit Sgd(const bp::Params& p)
        : bp::ElementwiseOptimizer(p, p.number("momentum") > 0 ? std::vector<std::string>{"momentum"}
                                                        : std::vector<std::string>{}),
          momentum_(float(p.number("momentum"))),
          dampening_(float(p.number("dampening"))),
          keep_(float(1.0 - p.number("dampening"))),
          nesterov_(p.boolean("nesterov")) {
        if (nesterov_ && (momentum_ <= 0.0f || dampening_ != 0.0f))
            throw bp::Error("sgd: nesterov needs momentum > 0 and dampening = 0");
    }

    void step(std::span<bp::ParameterRef> params) override {
        begin_step(params);
        for_each_piece(params, [&](Piece p) {
            const float lr = float(p.lr);
            if (momentum_ == 0.0f) {
                p.w -= lr * p.g;
                return;
            }
            auto buf = p.slot(0);
            if (steps_ == 1) buf = p.g;
            else buf = momentum_ * buf + keep_ * p.g;
            if (nesterov_) p.w -= lr * (p.g + momentum_ * buf);
            else p.w -= lr * buf;
        });
    }

private:
    float momentum_, dampening_, keep_;   // keep_ = 1 - dampening, rounded once
    bool nesterov_;
};

// sum += g^2; w -= lr g / (sqrt(sum) + eps)   (Duchi et al. 2011)
class Adagrad final : public bp::ElementwiseOptimizer {
public:
    static bp::Schema schema() {
        return bp::optimizer_options(bp::Schema()
                               .number("lr", 0.01, 0.0, 1e3, "learning rate")
                               .number("initial_accumulator", 0.0, 0.0, 1e3, "starting value of the sum of squares")
                               .number("eps", 1e-10, 0.0, 1.0, "added to the denominator for stability"));
    }
    explicit Adagrad(const bp::Params& p)
        : bp::ElementwiseOptimizer(p, {"sum"}), initial_(float(p.number("initial_accumulator"))), eps_(float(p.number("eps"))) {}

    void step(std::span<bp::ParameterRef> params) override {
        begin_step(params);
        for_each_piece(params, [&](Piece p) {
            const float lr = float(p.lr);
            auto sum = p.slot(0);
            if (steps_ == 1) sum = initial_;
            sum += p.g.square();
            p.w -= lr * p.g / (sum.sqrt() + eps_);
        });
    }

private:
    float initial_, eps_;
};

// v = alpha v + (1 - alpha) g^2; centered: a = alpha a + (1 - alpha) g, v' = v - a^2;
// d = g / (sqrt(v') + eps); momentum: buf = momentum buf + d, w -= lr buf; else w -= lr d.
class RmsProp final : public bp::ElementwiseOptimizer {
public:
    static bp::Schema schema() {
        return bp::optimizer_options(bp::Schema()
                               .number("lr", 0.01, 0.0, 1e3, "learning rate")
                               .number("alpha", 0.99, 0.0, 0.999999, "decay of the mean square")
                               .number("eps", 1e-8, 0.0, 1.0, "added to the denominator for stability")
                               .number("momentum", 0.0, 0.0, 1.0, "momentum on the normalised step (0: none)")
                               .boolean("centered", false, "divide by the variance estimate instead of the mean square"));
    }
    explicit RmsProp(const bp::Params& p)
        : bp::ElementwiseOptimizer(p, slots(p)),
          alpha_(float(p.number("alpha"))),
          keep_(float(1.0 - p.number("alpha"))),
          eps_(float(p.number("eps"))),
          momentum_(float(p.number("momentum"))),
          centered_(p.boolean("centered")) {}

    void step(std::span<bp::ParameterRef> params) override {
        begin_step(params);
        const std::size_t momentum_slot = centered_ ? 2 : 1;
        for_each_piece(params, [&](Piece p) {
            const float lr = float(p.lr);
            auto v = p.slot(0);
            v = alpha_ * v + keep_ * p.g.square();
            auto apply = [&](const auto& denom) {
                if (momentum_ > 0) {
                    auto buf = p.slot(momentum_slot);
                    buf = momentum_ * buf + p.g / denom;
                    p.w -= lr * buf;
                } else {
                    p.w -= lr * p.g / denom;
                }
            };
            if (centered_) {
                auto a = p.slot(1);
                a = alpha_ * a + keep_ * p.g;
                apply((v - a.square()).sqrt() + eps_);
            } else {
                apply(v.sqrt() + eps_);
            }
        });
    }

private:
    // Only the state the options use.
    static std::vector<std::string> slots(const bp::Params& p) {
        std::vector<std::string> names{"square_avg"};
        if (p.boolean("centered")) names.push_back("grad_avg");
        if (p.number("momentum") > 0) names.push_back("momentum");
        return names;
    }

    float alpha_, keep_, eps_, momentum_;
    bool centered_;
};

// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2 (amsgrad: vmax = max(vmax, v), used for v);
// w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)   (torch's form).
// adamw first decays the weights: w *= 1 - lr weight_decay (Loshchilov & Hutter 2019).
class Adam : public bp::ElementwiseOptimizer {
public:
    static bp::Schema schema(bool decoupled) {
        bp::Schema s = bp::Schema()
                           .number("lr", 0.001, 0.0, 1e3, "learning rate")
                           .number("beta1", 0.9, 0.0, 0.999999, "decay of the first-moment (mean) estimate")
                           .number("beta2", 0.999, 0.0, 0.999999999,
                                   "decay of the second-moment (uncentred variance) estimate")
                           .number("eps", 1e-8, 0.0, 1.0, "added to the denominator for stability")
                           .boolean("amsgrad", false, "use the largest second moment so far (Reddi et al. 2018)");
        return decoupled ? bp::optimizer_options(s, 0.01, "decoupled decay: w *= 1 - lr * weight_decay before each update")
                         : bp::optimizer_options(s);
    }
    Adam(const bp::Params& p, bool decoupled)
        : bp::ElementwiseOptimizer(p, p.boolean("amsgrad") ? std::vector<std::string>{"m", "v", "v_max"}
                                                    : std::vector<std::string>{"m", "v"},
                            !decoupled),
          decoupled_(decoupled),
          beta1_(p.number("beta1")),
          beta2_(p.number("beta2")),
          eps_(float(p.number("eps"))),
          amsgrad_(p.boolean("amsgrad")) {}

    void step(std::span<bp::ParameterRef> params) override {
        begin_step(params);
        const double bc1 = 1.0 - std::pow(beta1_, double(steps_));
        const double bc2 = 1.0 - std::pow(beta2_, double(steps_));
        const float inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2));
        const Moments moments(beta1_, beta2_);
        for_each_piece(params, [&](Piece p) {
            const float step_size = float(p.lr / bc1);
            if (decoupled_ && p.weight_decay != 0.0f) p.w *= float(1.0 - p.lr * double(p.weight_decay));
            auto m = p.slot(0), v = p.slot(1);
            moments.update(m, v, p.g);
            if (amsgrad_) {
                auto v_max = p.slot(2);
                v_max = v_max.max(v);
                p.w -= step_size * m / (v_max.sqrt() * inv_sqrt_bc2 + eps_);
            } else {
                p.w -= step_size * m / (v.sqrt() * inv_sqrt_bc2 + eps_);
            }
        });
    }

private:
    bool decoupled_;
    double beta1_, beta2_;
    float eps_;
    bool amsgrad_;
};

struct AdamL2 final : Adam {
    explicit AdamL2(const bp::Params& p) : Adam(p, false) {}
};
struct AdamW final : Adam {
    explicit AdamW(const bp::Params& p) : Adam(p, true) {}
};

// Adam with Nesterov momentum (Dozat 2016), as torch.optim.NAdam: with
// mu_t = b1 (1 - 0.5 * 0.96^(t psi)) and P_t = mu_1 ... mu_t,
// w -= lr (1 - mu_t) / (1 - P_t) g / d + lr mu_{t+1} / (1 - P_t mu_{t+1}) m / d,
// d = sqrt(v / (1 - b2^t)) + eps.
class NAdam final : public bp::ElementwiseOptimizer {
public:
    static bp::Schema schema() {
        return bp::optimizer_options(bp::Schema()
                               .number("lr", 0.002, 0.0, 1e3, "learning rate")
                               .number("beta1", 0.9, 0.0, 0.999999, "decay of the first-moment (mean) estimate")
                               .number("beta2", 0.999, 0.0, 0.999999999, "decay of the second-moment estimate")
                               .number("eps", 1e-8, 0.0, 1.0, "added to the denominator for stability")
                               .number("momentum_decay", 0.004, 0.0, 1.0, "psi in the momentum schedule mu_t"));
    }
    explicit NAdam(const bp::Params& p)
        : bp::ElementwiseOptimizer(p, {"m", "v"}),
          beta1_(p.number("beta1")),
          beta2_(p.number("beta2")),
          eps_(float(p.number("eps"))),
          psi_(p.number("momentum_decay")) {}

    void step(std::span<bp::ParameterRef> params) override {
        begin_step(params);
        const double mu = momentum(steps_), mu_next = momentum(steps_ + 1);
        mu_product_ *= mu;
        const double bc2 = 1.0 - std::pow(beta2_, double(steps_));
        const float inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2));
        const Moments moments(beta1_, beta2_);
        for_each_piece(params, [&](Piece p) {
            const float grad_coef = float(p.lr * (1.0 - mu) / (1.0 - mu_product_));
            const float m_coef = float(p.lr * mu_next / (1.0 - mu_product_ * mu_next));
            auto m = p.slot(0), v = p.slot(1);
            moments.update(m, v, p.g);
            const auto d = v.sqrt() * inv_sqrt_bc2 + eps_;
            p.w -= grad_coef * p.g / d + m_coef * m / d;
        });
    }

private:
    double momentum(int64_t t) const { return beta1_ * (1.0 - 0.5 * std::pow(0.96, double(t) * psi_)); }
    // The product is a function of the step count: rebuilt in the same order after a
    // resume, so it has the same bits as in an unbroken run.
    void restored() override {
        mu_product_ = 1.0;
        for (int64_t t = 1; t <= steps_; ++t) mu_product_ *= momentum(t);
    }

    double beta1_, beta2_;
    float eps_;
    double psi_;
    double mu_product_ = 1.0;
};

// Lion (Chen et al. 2023): w *= 1 - lr weight_decay; w -= lr sign(b1 m + (1-b1) g);
// m = b2 m + (1-b2) g.
class Lion final : public bp::ElementwiseOptimizer {
public:
    static bp::Schema schema() {
        return bp::optimizer_options(bp::Schema()
                               .number("lr", 1e-4, 0.0, 1e3, "learning rate (3-10x smaller than Adam's)")
                               .number("beta1", 0.9, 0.0, 0.999999, "interpolation for the update's sign")
                               .number("beta2", 0.99, 0.0, 0.999999, "decay of the momentum"),
                           0.0, "decoupled decay: w *= 1 - lr * weight_decay before each update");
    }
    explicit Lion(const bp::Params& p)
        : bp::ElementwiseOptimizer(p, {"m"}, false), beta1_(p.number("beta1")), beta2_(p.number("beta2")) {}

    void step(std::span<bp::ParameterRef> params) override {
        begin_step(params);
        const float b1 = float(beta1_), b2 = float(beta2_), c1 = float(1.0 - beta1_), c2 = float(1.0 - beta2_);
        for_each_piece(params, [&](Piece p) {
            const float lr = float(p.lr);
            if (p.weight_decay != 0.0f) p.w *= float(1.0 - p.lr * double(p.weight_decay));
            auto m = p.slot(0);
            p.w -= lr * (b1 * m + c1 * p.g).sign();
            m = b2 * m + c2 * p.g;
        });
    }

private:
    double beta1_, beta2_;
};

}  // namespace

BACKPLANE_PLUGIN("backplane-optimizers", "0.2.0") {
    manifest.optimizer<Sgd>("sgd", "stochastic gradient descent with momentum, Nesterov and weight decay", Sgd::schema())
        .optimizer<Adagrad>("adagrad", "per-element rates from the sum of squared gradients (Duchi et al. 2011)",
                            Adagrad::schema())
        .optimizer<RmsProp>("rmsprop", "per-element rates from a running mean square (Hinton 2012), centred or not",
                            RmsProp::schema())
        .optimizer<AdamL2>("adam", "Adam with bias correction (Kingma & Ba 2015), L2 weight decay, AMSGrad",
                           Adam::schema(false))
        .optimizer<AdamW>("adamw", "Adam with decoupled weight decay (Loshchilov & Hutter 2019)", Adam::schema(true))
        .optimizer<NAdam>("nadam", "Adam with Nesterov momentum (Dozat 2016)", NAdam::schema())
        .optimizer<Lion>("lion", "sign of interpolated momentum (Chen et al. 2023)", Lion::schema());
}
