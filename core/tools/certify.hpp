// What `backplane check-plugin` runs on every component of a library, and what the
// test suite runs on every built-in one: the same checks, so a plugin that passes
// is held to the built-ins' standard.
//
//   schema       the component and each parameter have a doc line; defaults lie in
//                their ranges and choices; it can be made with its defaults
//   gradients    central differences against backward (layers, activations, losses),
//                over every check case and parameter variant (gradient_check.hpp)
//   determinism  a small training run at 1 and N threads: identical weights, losses
//   resume       4 epochs straight = 2 epochs, checkpoint, resume, 2 more, bitwise
//                (layers, optimizers, schedules: whatever keeps state)
//   rates        a schedule's rates are finite and not negative
//   data         a dataset loads with its defaults, consistently and twice the same
#pragma once

#include "tools/gradient_check.hpp"
#include "model/registry.hpp"

#include <string>
#include <vector>

namespace bp {

struct CheckOutcome {
    std::string check;    // "gradients"
    bool passed = true;
    bool skipped = false;
    std::string detail;   // one line when passed, the failure's account otherwise
};

struct Certificate {
    Kind kind;
    std::string name;
    std::vector<CheckOutcome> checks;
    bool passed() const;
    // "layer dense\n  ok    schema  ...\n"
    std::string report() const;
};

struct CertifyOptions {
    int threads = 4;   // compared with 1 thread
};

// Non-const: the checks' experiments go through the experiment reader, which loads plugins.
Certificate certify(Registry& registry, Kind kind, const std::string& name, const CertifyOptions& o = {});

// Every gradient check of one layer, activation or loss: each check case with each
// parameter variant and seed (layers and activations), each prediction/target pairing
// the loss accepts (losses).
std::vector<GradientCheckResult> gradient_checks(const Registry& registry, Kind kind, const std::string& name);

}  // namespace bp
