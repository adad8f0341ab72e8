#include "train/diagnostics.hpp"

#include "text/format.hpp"

#include <algorithm>
#include <cmath>

namespace bp {

StepDiagnostics::StepDiagnostics(std::span<const ParameterRef> params, int64_t every) : every_(every) {
    for (const auto& p : params) {
        auto it = std::find(nodes_.begin(), nodes_.end(), p.node);
        if (it == nodes_.end()) it = nodes_.insert(nodes_.end(), p.node);
        node_of_.push_back(std::size_t(it - nodes_.begin()));
        before_.emplace_back(p.value.rows(), p.value.cols());
    }
    grad_.assign(nodes_.size(), 0.0);
    update_.assign(nodes_.size(), 0.0);
    weight_.assign(nodes_.size(), 0.0);
}

void StepDiagnostics::reserve(int64_t steps) { rows_.reserve(rows_.size() + std::size_t(steps / every_ + 1) * columns()); }

void StepDiagnostics::before_update(std::span<const ParameterRef> params) {
    std::fill(grad_.begin(), grad_.end(), 0.0);
    for (std::size_t i = 0; i < params.size(); ++i) {
        grad_[node_of_[i]] += params[i].grad.cast<double>().squaredNorm();
        before_[i] = params[i].value;
    }
}

void StepDiagnostics::after_update(std::span<const ParameterRef> params, int64_t epoch, int64_t step, double lr,
                                   double loss) {
    std::fill(update_.begin(), update_.end(), 0.0);
    std::fill(weight_.begin(), weight_.end(), 0.0);
    for (std::size_t i = 0; i < params.size(); ++i) {
        update_[node_of_[i]] += (params[i].value - before_[i]).cast<double>().squaredNorm();
        weight_[node_of_[i]] += params[i].value.cast<double>().squaredNorm();
    }
    double grad = 0, update = 0, weight = 0;
    for (std::size_t n = 0; n < nodes_.size(); ++n) grad += grad_[n], update += update_[n], weight += weight_[n];
    const double update_norm = std::sqrt(update), weight_norm = std::sqrt(weight);
    for (double v : {double(step), double(epoch), lr, loss, std::sqrt(grad), update_norm, weight_norm,
                     update_norm / weight_norm})
        rows_.push_back(v);
    for (std::size_t n = 0; n < nodes_.size(); ++n) rows_.push_back(std::sqrt(grad_[n]));
    for (std::size_t n = 0; n < nodes_.size(); ++n) rows_.push_back(std::sqrt(update_[n]) / std::sqrt(weight_[n]));
}

std::string StepDiagnostics::header() const {
    std::string out = "step,epoch,lr,loss,grad_norm,update_norm,weight_norm,update_ratio";
    for (const auto& n : nodes_) out += ",grad_norm:" + n;
    for (const auto& n : nodes_) out += ",update_ratio:" + n;
    return out + "\n";
}

std::string StepDiagnostics::take_rows() {
    std::string out;
    for (std::size_t at = 0; at < rows_.size(); at += columns()) {
        out += std::to_string(int64_t(rows_[at])) + "," + std::to_string(int64_t(rows_[at + 1]));
        for (std::size_t c = 2; c < columns(); ++c) out += "," + csv_number(rows_[at + c]);
        out += "\n";
    }
    rows_.clear();
    return out;
}

}  // namespace bp
