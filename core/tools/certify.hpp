// What `backplane check-plugin` runs on every component of a library, and what the
// test suite runs on every built-in one: the same checks, so a plugin that passes
// is held to the built-ins' standard.
//
//   schema       the component and each parameter have a doc line; defaults lie in
//                their ranges and choices; it can be made with its defaults
//   gradients    central differences against backward (layers, activations, losses),
//                over every check case and parameter variant, away from the initial
//                parameters (gradient_check.hpp)
//   rows         a loss of rows together is the sum of their losses alone (losses)
//   isolation    shards interleaved or on three threads at once give each shard the
//                bits it gets alone (layers, activations; isolation_check.hpp)
//   determinism  a training run at 1, 2 and N threads: identical weights and losses,
//                and more than one thread did work in each multi-thread run
//   resume       4 epochs straight = 2 epochs, checkpoint, resume, 2 more, bitwise, on
//                a model of 12 parameter tensors (layers, optimizers, schedules)
//   rates        a schedule's rates are finite and not negative
//   data         a dataset loads (with its defaults, or the --set given), consistently
//                and twice the same
// A check that cannot run fails: a certificate says only what was shown.
#pragma once

#include "tools/gradient_check.hpp"
#include "model/registry.hpp"

#include <string>
#include <vector>

namespace bp {

struct CheckOutcome {
    std::string check;    // "gradients"
    bool passed = true;   // a check that could not run has failed: nothing was shown
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
    int threads = 4;                  // compared with 1 thread, as is 2
    std::vector<std::string> sets;    // "component.key=value": parameters to check a component with
};

// Non-const: the checks' experiments go through the experiment reader, which loads plugins.
Certificate certify(Registry& registry, Kind kind, const std::string& name, const CertifyOptions& o = {});

// Every gradient check of one layer, activation or loss: each check case with each
// parameter variant and seed (layers and activations), each prediction/target pairing
// the loss accepts (losses).
std::vector<GradientCheckResult> gradient_checks(const Registry& registry, Kind kind, const std::string& name);

}  // namespace bp
