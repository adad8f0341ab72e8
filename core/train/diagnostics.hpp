// What an optimizer researcher reads step by step (train.diagnostics_every): every N
// steps the batch loss, the learning rate, and the norms of the gradient, of the
// update the optimizer made and of the weights, with the update-to-weight ratio,
// over the whole model and per model entry. Rows are kept in a buffer reserved
// before each epoch, so a step with diagnostics on allocates nothing either.
#pragma once

#include <backplane/components.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace bp {

class StepDiagnostics {
public:
    // `params`: what the optimizer updates, in order (their nodes name the columns).
    StepDiagnostics(std::span<const ParameterRef> params, int64_t every);

    bool due(int64_t step) const { return step % every_ == 0; }
    // Room for the rows of an epoch of `steps` steps.
    void reserve(int64_t steps);
    // Before the optimizer's step: the gradients' norms, and the weights kept.
    void before_update(std::span<const ParameterRef> params);
    // After it: the update's and the weights' norms, and the row.
    void after_update(std::span<const ParameterRef> params, int64_t epoch, int64_t step, double lr, double loss);

    // steps.csv's first line: step,epoch,lr,loss,grad_norm,update_norm,weight_norm,
    // update_ratio, then grad_norm:<entry> and update_ratio:<entry> for each entry.
    std::string header() const;
    // The rows recorded since the last call, as CSV lines.
    std::string take_rows();

private:
    int64_t every_;
    std::vector<std::string> nodes_;       // the entries with trainable parameters, in order
    std::vector<std::size_t> node_of_;     // parameter -> index in nodes_
    std::vector<Matrix> before_;           // the weights before the update
    std::vector<double> grad_, update_, weight_;   // per node, squared sums
    std::vector<double> rows_;             // columns() values per row
    std::size_t columns() const { return 8 + 2 * nodes_.size(); }
};

}  // namespace bp
