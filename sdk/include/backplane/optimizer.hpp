// What optimizers share, for a plugin's as for the built-in ones: the common options
// (weight decay and which parameters it applies to, gradient clipping), the learning
// rate with each parameter's lr_scale, state tensors per parameter saved for
// checkpoints, and the update run in fixed pieces on the trainer's threads. An
// optimizer derives from bp::ElementwiseOptimizer and writes its update of one piece
// (docs/writing-plugins.md); sdk/examples and the built-in optimizers show how.
#pragma once

#include "backplane/components.hpp"
#include "backplane/error.hpp"
#include "backplane/params.hpp"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace bp {

// `s` with the options every ElementwiseOptimizer reads: weight_decay, decay, clip_norm,
// clip_value.
inline Schema optimizer_options(Schema s, double default_weight_decay = 0.0,
                                const char* weight_decay_doc = "L2 penalty added to the gradient: g += weight_decay * w") {
    return s.number("weight_decay", default_weight_decay, 0.0, 10.0, weight_decay_doc)
        .choice("decay", "all", {"all", "weights"},
                "which parameters weight_decay applies to: all, or weights only (not biases, norm gains and "
                "shifts: the AdamW practice)")
        .number("clip_norm", 0.0, 0.0, 1e9,
                "if > 0, scale all gradients together so their global L2 norm is at most this (0: off)")
        .number("clip_value", 0.0, 0.0, 1e9, "if > 0, clamp each gradient element to [-clip_value, clip_value] (0: off)");
}

// An optimizer whose update of an element reads and writes only that element (and its
// state): SGD, Adam, Lion... It calls begin_step, then for_each_piece with its update.
class ElementwiseOptimizer : public Optimizer {
public:
    // Elements [offset, offset + length) of one parameter: its value, the gradient the
    // update uses (clipped, with coupled weight decay), its state tensors, and what
    // applies to it: the learning rate times its lr_scale, and the decoupled weight decay
    // the update applies itself (0 when coupled, already in g, or when `decay` leaves the
    // parameter out).
    struct Piece {
        Eigen::Map<Eigen::ArrayXf> w;
        Eigen::Map<const Eigen::ArrayXf> g;
        double lr;
        float weight_decay;
        std::vector<Matrix>* slots;   // the optimizer's slots, by slot, then parameter
        std::size_t index;            // the parameter's position
        Eigen::Index offset, length;
        // This piece of state slot `s` (in the order the constructor named the slots).
        Eigen::Map<Eigen::ArrayXf> slot(std::size_t s) const { return {slots[s][index].data() + offset, length}; }
    };

    double learning_rate() const override { return lr_; }
    void set_learning_rate(double lr) override { lr_ = lr; }

    // "step" (the count, as two floats of 24 bits each: exact up to 2^48 steps), then
    // "<slot>.<parameter index>" for every slot and parameter.
    std::vector<NamedTensor> state() const override {
        Matrix step(1, 2);
        step << float(steps_ >> 24), float(steps_ & 0xFFFFFF);
        std::vector<NamedTensor> out{{"step", step}};
        for (std::size_t s = 0; s < slot_names_.size(); ++s)
            for (std::size_t i = 0; i < slots_[s].size(); ++i)
                out.push_back({slot_names_[s] + "." + std::to_string(i), slots_[s][i]});
        return out;
    }

    // By name, so the order the tensors come back in does not matter.
    void load_state(const std::vector<NamedTensor>& state) override {
        std::map<std::string, const Matrix*> by_name;
        for (const auto& t : state) by_name[t.name] = &t.value;
        const auto step = by_name.find("step");
        if (step == by_name.end() || step->second->rows() != 1 || step->second->cols() < 1 || step->second->cols() > 2)
            throw Error("optimizer state has no step count");
        const Matrix& count = *step->second;   // one float in checkpoints before 0.2
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
        if (state.size() != found) throw Error("optimizer state has unexpected tensors");
        restored();
    }

protected:
    // `p` holds lr and optimizer_options' keys. `slot_names`: the state tensors kept per
    // parameter. Coupled weight decay is added to the gradient; decoupled is left to the
    // update (Piece::weight_decay), as AdamW and Lion apply it.
    ElementwiseOptimizer(const Params& p, std::vector<std::string> slot_names, bool coupled_weight_decay = true)
        : lr_(p.number("lr")),
          weight_decay_(float(p.number("weight_decay"))),
          decay_weights_only_(p.text("decay") == "weights"),
          coupled_(coupled_weight_decay),
          clip_norm_(p.number("clip_norm")),
          clip_value_(float(p.number("clip_value"))),
          slot_names_(std::move(slot_names)),
          slots_(slot_names_.size()) {}

    // Counts the step, makes zero state shaped like the parameters on the first step
    // (restored state must have their shapes), and prepares the gradients.
    void begin_step(std::span<ParameterRef> params) {
        ++steps_;
        for (std::size_t s = 0; s < slots_.size(); ++s) {
            auto& slot = slots_[s];
            if (slot.empty()) {
                for (auto& p : params) slot.push_back(Matrix::Zero(p.value.rows(), p.value.cols()));
                continue;
            }
            bool fits = slot.size() == params.size();
            for (std::size_t i = 0; fits && i < params.size(); ++i)
                fits = slot[i].rows() == params[i].value.rows() && slot[i].cols() == params[i].value.cols();
            if (!fits) throw Error("optimizer state '" + slot_names_[s] + "' does not match the parameters' shapes");
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
    void for_each_piece(std::span<ParameterRef> params, Update&& update) {
        if (pieces_.empty() || pieces_for_ != params.size()) cut_pieces(params);
        auto run = [&](std::size_t k) {
            const auto [i, offset, length] = pieces_[k];
            const ConstMatrixRef grad = adjusted_.empty() ? params[i].grad : ConstMatrixRef(adjusted_[i]);
            update(Piece{Eigen::Map<Eigen::ArrayXf>(params[i].value.data() + offset, length),
                         Eigen::Map<const Eigen::ArrayXf>(grad.data() + offset, length),
                         lr_ * double(params[i].lr_scale), !coupled_ && decays(params[i]) ? weight_decay_ : 0.0f,
                         slots_.data(),
                         i, offset, length});
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
    float weight_decay_;
    int64_t steps_ = 0;

private:
    // Whether weight decay applies to `p`: always, or (decay: weights) to weights and
    // embeddings only.
    bool decays(const ParameterRef& p) const {
        return !decay_weights_only_ || p.role == ParameterRole::weight || p.role == ParameterRole::embedding;
    }

    void prepare_gradients(std::span<ParameterRef> params) {
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
            for (std::size_t i = 0; i < params.size(); ++i)
                if (decays(params[i])) adjusted_[i] += weight_decay_ * params[i].value;
    }

    static constexpr Eigen::Index piece_size = 16384;

    // Once (and again if the parameters change): the pieces, after checking that every
    // tensor is contiguous, as the trainer's are.
    void cut_pieces(std::span<ParameterRef> params) {
        pieces_.clear();
        total_ = 0;
        for (std::size_t i = 0; i < params.size(); ++i) {
            const auto& p = params[i];
            if ((p.value.rows() > 1 && p.value.outerStride() != p.value.cols()) ||
                (p.grad.rows() > 1 && p.grad.outerStride() != p.grad.cols()))
                throw Error("optimizer: parameter '" + p.name + "' is not a contiguous tensor");
            const Eigen::Index size = p.value.size();
            for (Eigen::Index at = 0; at < size; at += piece_size)
                pieces_.push_back({i, at, std::min(piece_size, size - at)});
            total_ += size;
        }
        pieces_for_ = params.size();
    }

    bool decay_weights_only_;
    bool coupled_;
    double clip_norm_;
    float clip_value_;
    std::vector<std::string> slot_names_;
    std::vector<std::vector<Matrix>> slots_;
    std::vector<Matrix> adjusted_;   // clipped / decayed gradients, made on the first step that needs them
    struct PieceRange {
        std::size_t index;
        Eigen::Index offset, length;
    };
    std::vector<PieceRange> pieces_;
    std::size_t pieces_for_ = 0;
    Eigen::Index total_ = 0;
};

}  // namespace bp
