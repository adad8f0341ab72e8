// The built-in optimizers, with PyTorch's update rules (torch.optim 1.13; NAdam as
// 2.x, which fixed 1.13's double-counted momentum factor; Lion as its paper) so
// results can be compared. State is kept per parameter, in the order the trainer passes them.
#include <backplane/backplane.hpp>

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace {

// The options every optimizer shares, added to its own schema.
bp::Schema with_common(bp::Schema s, double default_weight_decay = 0.0,
                       const char* weight_decay_doc = "L2 penalty added to the gradient: g += weight_decay * w") {
    return s.number("weight_decay", default_weight_decay, 0.0, 10.0, weight_decay_doc)
        .number("clip_norm", 0.0, 0.0, 1e9,
                "if > 0, scale all gradients together so their global L2 norm is at most this (0: off)")
        .number("clip_value", 0.0, 0.0, 1e9, "if > 0, clamp each gradient element to [-clip_value, clip_value] (0: off)");
}

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

using Array = Eigen::Map<Eigen::ArrayXf>;
using ConstArray = Eigen::Map<const Eigen::ArrayXf>;

// Elements [offset, offset + length) of one parameter: its value, the gradient the
// update uses, and its state tensors, as flat arrays.
struct Piece {
    Array w;
    ConstArray g;
    std::vector<bp::Matrix>* slots;   // this optimizer's slots of parameter `index`, by slot
    std::size_t index;
    Eigen::Index offset, length;
    Array slot(std::size_t s) const { return {slots[s][index].data() + offset, length}; }
};

// Common to every optimizer: learning rate, gradient clipping, coupled weight decay,
// the step count, per-parameter state tensors by slot, saved and restored as named
// tensors "<slot>.<param index>", and the update run in pieces on the trainer's threads.
class StatefulOptimizer : public bp::Optimizer {
public:
    double learning_rate() const override { return lr_; }
    void set_learning_rate(double lr) override { lr_ = lr; }

    std::vector<bp::NamedTensor> state() const override {
        // The count as two floats of 24 bits each: exact up to 2^48 steps.
        bp::Matrix step(1, 2);
        step << float(steps_ >> 24), float(steps_ & 0xFFFFFF);
        std::vector<bp::NamedTensor> out{{"step", step}};
        for (std::size_t s = 0; s < slot_names_.size(); ++s)
            for (std::size_t i = 0; i < slots_[s].size(); ++i)
                out.push_back({slot_names_[s] + "." + std::to_string(i), slots_[s][i]});
        return out;
    }

    // By name, so the order the tensors come back in does not matter.
    void load_state(const std::vector<bp::NamedTensor>& state) override {
        std::map<std::string, const bp::Matrix*> by_name;
        for (const auto& t : state) by_name[t.name] = &t.value;
        const auto step = by_name.find("step");
        if (step == by_name.end() || step->second->rows() != 1 || step->second->cols() < 1 || step->second->cols() > 2)
            throw bp::Error("optimizer state has no step count");
        const bp::Matrix& count = *step->second;   // one float in checkpoints before 0.2
        steps_ = count.cols() == 1 ? int64_t(count(0, 0)) : (int64_t(count(0, 0)) << 24) + int64_t(count(0, 1));
        std::size_t found = 1;
        for (std::size_t s = 0; s < slot_names_.size(); ++s) {
            slots_[s].clear();
            for (std::size_t i = 0;; ++i) {
                auto it = by_name.find(slot_names_[s] + "." + std::to_string(i));
                if (it == by_name.end()) break;
                slots_[s].push_back(*it->second);
            }
            found += slots_[s].size();
        }
        if (state.size() != found) throw bp::Error("optimizer state has unexpected tensors");
        restored();
    }

protected:
    StatefulOptimizer(const bp::Params& p, std::vector<std::string> slot_names, bool coupled_weight_decay = true)
        : lr_(p.number("lr")),
          weight_decay_(float(p.number("weight_decay"))),
          coupled_(coupled_weight_decay),
          clip_norm_(p.number("clip_norm")),
          clip_value_(float(p.number("clip_value"))),
          slot_names_(std::move(slot_names)),
          slots_(slot_names_.size()) {}

    // Counts the step, makes zero state shaped like the parameters on the first step
    // (restored state must have their shapes), and prepares gradient(i).
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
        prepare_gradients(params);
    }

    // Runs update(piece) over every parameter, cut into fixed pieces of 16,384 elements
    // that run in parallel (on the trainer's threads: the step is called inside its
    // arena). Every element's update reads and writes only that element, so the bits
    // are those of one loop, at any thread count. The default partitioner lets the
    // calling thread take every piece when the other is late: a static partition made
    // a third of 2-thread MLP runs a third slower (96-113k against 150-157k samples/s).
    template <class Update>
    void for_each_piece(std::span<bp::ParameterRef> params, Update&& update) {
        if (pieces_.empty() || pieces_for_ != params.size()) cut_pieces(params);
        auto run = [&](std::size_t k) {
            const auto [i, offset, length] = pieces_[k];
            const bp::ConstMatrixRef grad = adjusted_.empty() ? params[i].grad : bp::ConstMatrixRef(adjusted_[i]);
            update(Piece{Array(params[i].value.data() + offset, length), ConstArray(grad.data() + offset, length),
                         slots_.data(), i, offset, length});
        };
        if (total_ < 2 * piece_size) {   // small models: not worth waking a thread
            for (std::size_t k = 0; k < pieces_.size(); ++k) run(k);
            return;
        }
        tbb::parallel_for(std::size_t(0), pieces_.size(), run);
    }

    // Called after load_state, for state derived from the step count.
    virtual void restored() {}

    double lr_;
    float weight_decay_;   // coupled (in the gradient) or decoupled (applied to w by the subclass)
    int64_t steps_ = 0;

private:
    void prepare_gradients(std::span<bp::ParameterRef> params) {
        const bool decay = coupled_ && weight_decay_ != 0.0f;
        if (clip_norm_ <= 0 && clip_value_ <= 0 && !decay) return;
        if (adjusted_.size() != params.size()) {
            adjusted_.clear();
            for (const auto& p : params) adjusted_.emplace_back(p.grad.rows(), p.grad.cols());
        }
        for (std::size_t i = 0; i < params.size(); ++i) {
            if (clip_value_ > 0) adjusted_[i] = params[i].grad.array().max(-clip_value_).min(clip_value_).matrix();
            else adjusted_[i] = params[i].grad;
        }
        // torch.nn.utils.clip_grad_norm_ after clip_grad_value_: one factor for all,
        // from the norm of the value-clipped gradients, summed in a fixed order.
        if (clip_norm_ > 0) {
            double squares = 0;
            for (const auto& g : adjusted_) squares += g.cast<double>().squaredNorm();
            const float scale = float(std::min(1.0, clip_norm_ / (std::sqrt(squares) + 1e-6)));
            if (scale != 1.0f)
                for (auto& g : adjusted_) g *= scale;
        }
        if (decay)
            for (std::size_t i = 0; i < params.size(); ++i) adjusted_[i] += weight_decay_ * params[i].value;
    }

    static constexpr Eigen::Index piece_size = 16384;

    // Once (and again if the parameters change): the pieces, after checking that every
    // tensor is contiguous, as the trainer's are.
    void cut_pieces(std::span<bp::ParameterRef> params) {
        pieces_.clear();
        total_ = 0;
        for (std::size_t i = 0; i < params.size(); ++i) {
            const auto& p = params[i];
            if ((p.value.rows() > 1 && p.value.outerStride() != p.value.cols()) ||
                (p.grad.rows() > 1 && p.grad.outerStride() != p.grad.cols()))
                throw bp::Error("optimizer: parameter '" + p.name + "' is not a contiguous tensor");
            const Eigen::Index size = p.value.size();
            for (Eigen::Index at = 0; at < size; at += piece_size)
                pieces_.push_back({i, at, std::min(piece_size, size - at)});
            total_ += size;
        }
        pieces_for_ = params.size();
    }

    bool coupled_;
    double clip_norm_;
    float clip_value_;
    std::vector<std::string> slot_names_;
    std::vector<std::vector<bp::Matrix>> slots_;
    std::vector<bp::Matrix> adjusted_;   // clipped / decayed gradients, made on the first step that needs them
    struct PieceRange {
        std::size_t index;
        Eigen::Index offset, length;
    };
    std::vector<PieceRange> pieces_;
    std::size_t pieces_for_ = 0;
    Eigen::Index total_ = 0;
};

// buf = momentum buf + (1 - dampening) g (buf = g on the first step);
// g = g + momentum buf (nesterov) or buf; w -= lr g.
class Sgd final : public StatefulOptimizer {
public:
    static bp::Schema schema() {
        return with_common(bp::Schema()
                               .number("lr", 0.01, 0.0, 1e3, "learning rate")
                               .number("momentum", 0.0, 0.0, 1.0, "heavy-ball momentum factor (0 = plain SGD)")
                               .number("dampening", 0.0, 0.0, 1.0,
                                       "scales the new gradient entering the momentum buffer by 1 - dampening")
                               .boolean("nesterov", false, "Nesterov momentum (needs momentum > 0 and dampening 0)"));
    }
    explicit Sgd(const bp::Params& p)
        : StatefulOptimizer(p, p.number("momentum") > 0 ? std::vector<std::string>{"momentum"}
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
        const float lr = float(lr_);
        for_each_piece(params, [&](Piece p) {
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
class Adagrad final : public StatefulOptimizer {
public:
    static bp::Schema schema() {
        return with_common(bp::Schema()
                               .number("lr", 0.01, 0.0, 1e3, "learning rate")
                               .number("initial_accumulator", 0.0, 0.0, 1e3, "starting value of the sum of squares")
                               .number("eps", 1e-10, 0.0, 1.0, "added to the denominator for stability"));
    }
    explicit Adagrad(const bp::Params& p)
        : StatefulOptimizer(p, {"sum"}), initial_(float(p.number("initial_accumulator"))), eps_(float(p.number("eps"))) {}

    void step(std::span<bp::ParameterRef> params) override {
        begin_step(params);
        const float lr = float(lr_);
        for_each_piece(params, [&](Piece p) {
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
class RmsProp final : public StatefulOptimizer {
public:
    static bp::Schema schema() {
        return with_common(bp::Schema()
                               .number("lr", 0.01, 0.0, 1e3, "learning rate")
                               .number("alpha", 0.99, 0.0, 0.999999, "decay of the mean square")
                               .number("eps", 1e-8, 0.0, 1.0, "added to the denominator for stability")
                               .number("momentum", 0.0, 0.0, 1.0, "momentum on the normalised step (0: none)")
                               .boolean("centered", false, "divide by the variance estimate instead of the mean square"));
    }
    explicit RmsProp(const bp::Params& p)
        : StatefulOptimizer(p, slots(p)),
          alpha_(float(p.number("alpha"))),
          keep_(float(1.0 - p.number("alpha"))),
          eps_(float(p.number("eps"))),
          momentum_(float(p.number("momentum"))),
          centered_(p.boolean("centered")) {}

    void step(std::span<bp::ParameterRef> params) override {
        begin_step(params);
        const float lr = float(lr_);
        const std::size_t momentum_slot = centered_ ? 2 : 1;
        for_each_piece(params, [&](Piece p) {
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
class Adam : public StatefulOptimizer {
public:
    static bp::Schema schema(bool decoupled) {
        bp::Schema s = bp::Schema()
                           .number("lr", 0.001, 0.0, 1e3, "learning rate")
                           .number("beta1", 0.9, 0.0, 0.999999, "decay of the first-moment (mean) estimate")
                           .number("beta2", 0.999, 0.0, 0.999999999,
                                   "decay of the second-moment (uncentred variance) estimate")
                           .number("eps", 1e-8, 0.0, 1.0, "added to the denominator for stability")
                           .boolean("amsgrad", false, "use the largest second moment so far (Reddi et al. 2018)");
        return decoupled ? with_common(s, 0.01, "decoupled decay: w *= 1 - lr * weight_decay before each update")
                         : with_common(s);
    }
    Adam(const bp::Params& p, bool decoupled)
        : StatefulOptimizer(p, p.boolean("amsgrad") ? std::vector<std::string>{"m", "v", "v_max"}
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
        const float step_size = float(lr_ / bc1);
        const float inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2));
        const Moments moments(beta1_, beta2_);
        const float decay = float(1.0 - lr_ * weight_decay_);
        for_each_piece(params, [&](Piece p) {
            if (decoupled_ && weight_decay_ != 0.0f) p.w *= decay;
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
class NAdam final : public StatefulOptimizer {
public:
    static bp::Schema schema() {
        return with_common(bp::Schema()
                               .number("lr", 0.002, 0.0, 1e3, "learning rate")
                               .number("beta1", 0.9, 0.0, 0.999999, "decay of the first-moment (mean) estimate")
                               .number("beta2", 0.999, 0.0, 0.999999999, "decay of the second-moment estimate")
                               .number("eps", 1e-8, 0.0, 1.0, "added to the denominator for stability")
                               .number("momentum_decay", 0.004, 0.0, 1.0, "psi in the momentum schedule mu_t"));
    }
    explicit NAdam(const bp::Params& p)
        : StatefulOptimizer(p, {"m", "v"}),
          beta1_(p.number("beta1")),
          beta2_(p.number("beta2")),
          eps_(float(p.number("eps"))),
          psi_(p.number("momentum_decay")) {}

    void step(std::span<bp::ParameterRef> params) override {
        begin_step(params);
        const double mu = momentum(steps_), mu_next = momentum(steps_ + 1);
        mu_product_ *= mu;
        const double bc2 = 1.0 - std::pow(beta2_, double(steps_));
        const float grad_coef = float(lr_ * (1.0 - mu) / (1.0 - mu_product_));
        const float m_coef = float(lr_ * mu_next / (1.0 - mu_product_ * mu_next));
        const float inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2));
        const Moments moments(beta1_, beta2_);
        for_each_piece(params, [&](Piece p) {
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
class Lion final : public StatefulOptimizer {
public:
    static bp::Schema schema() {
        return with_common(bp::Schema()
                               .number("lr", 1e-4, 0.0, 1e3, "learning rate (3-10x smaller than Adam's)")
                               .number("beta1", 0.9, 0.0, 0.999999, "interpolation for the update's sign")
                               .number("beta2", 0.99, 0.0, 0.999999, "decay of the momentum"),
                           0.0, "decoupled decay: w *= 1 - lr * weight_decay before each update");
    }
    explicit Lion(const bp::Params& p)
        : StatefulOptimizer(p, {"m"}, false), beta1_(p.number("beta1")), beta2_(p.number("beta2")) {}

    void step(std::span<bp::ParameterRef> params) override {
        begin_step(params);
        const float lr = float(lr_), decay = float(1.0 - lr_ * weight_decay_);
        const float b1 = float(beta1_), b2 = float(beta2_), c1 = float(1.0 - beta1_), c2 = float(1.0 - beta2_);
        for_each_piece(params, [&](Piece p) {
            if (weight_decay_ != 0.0f) p.w *= decay;
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
