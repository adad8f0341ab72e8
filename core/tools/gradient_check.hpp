// The generic gradient check (Caffe's GradientChecker, in spirit): central
// differences against a component's analytic gradients, for any layer,
// activation or loss the registry holds. The tests run it over every registered
// component, so a new plugin is checked without a new test.
#pragma once

#include "model/network.hpp"
#include "model/registry.hpp"

#include <backplane/components.hpp>

#include <span>
#include <string>
#include <vector>

namespace bp {

struct GradientCheckOptions {
    double step = 1e-3;        // finite-difference step h: small enough that few kinks fall inside
    double abs_tol = 2e-3;     // |analytic - numeric| <= abs_tol + rel_tol * max(|analytic|, |numeric|)
    double rel_tol = 1e-2;
    int64_t rows = 3;          // samples in the checked batch
    int64_t max_per_tensor = 200;   // elements checked per tensor (a seeded sample beyond that)
    int64_t indices = 0;       // > 0: the first input holds integers in [0, indices), not checked (CheckCase::indices)
};

// A check's input: normal values, or (indices > 0) integers in [0, indices), token ids.
Matrix check_input(int64_t rows, int64_t cols, const Random& r, int64_t indices = 0);

struct GradientCheckResult {
    std::string subject;              // "layer dense {units: 32, ...} on [7]"
    int64_t checked = 0;
    // Points where a kink (relu at 0) lies within the step: the one-sided
    // differences disagree, and a central difference with a step 4 or 16 times
    // smaller agrees with the analytic value.
    int64_t kinks = 0;
    int64_t rounding = 0;   // points that agreed only at larger steps (float rounding in f)
    double worst = 0;                 // largest |analytic - numeric| / tolerance seen (<= 1 passes)
    std::vector<std::string> failures;   // first few mismatches, readable
    bool passed() const { return failures.empty() && kinks * 20 <= checked && rounding * 20 <= checked; }
    std::string report() const;
};

// A check case's input shapes: its input, then a merge layer's more_inputs.
std::vector<Shape> inputs_of(const CheckCase& c);
// "[7]", "[7] and [7]", "[3], [4] and [5]"
std::string shapes_text(std::span<const Shape> shapes);

// Builds `layer` for `inputs`, moves its parameters off their initial values, and checks
// d(sum w.*y)/dx for every input and /dparameters, in training mode (dropout masks,
// batch statistics) or evaluation mode.
GradientCheckResult check_layer(Layer& layer, const std::vector<Shape>& inputs, uint64_t seed, bool training = true,
                                const GradientCheckOptions& o = {});

// Checks d(sum w.*output)/dparameters for every parameter of `network`, through its
// whole graph: merges, and nodes feeding several others (training mode).
GradientCheckResult check_network(const Network& network, uint64_t seed, const GradientCheckOptions& o = {});

// Checks dloss/dpred for predictions of shape `pred` against random valid targets.
GradientCheckResult check_loss(const Loss& loss, const Shape& pred, const TargetInfo& targets, uint64_t seed,
                               const GradientCheckOptions& o = {});

// "" when the loss of rows together is the sum of their losses alone, and each row's
// gradient its own; else what differs. The core sums shards' losses, so a loss that
// averages would change with shard_size.
std::string rows_problem(const Loss& loss, const Shape& pred, const TargetInfo& targets, uint64_t seed);

// The parameter sets a generic check covers: the defaults, then each choice,
// boolean and activation parameter moved to each other value, one at a time.
std::vector<Params> parameter_variants(const Schema& schema, const Registry& registry);

// "{units: 32, activation: relu}"
std::string describe(const Params& p);

}  // namespace bp
