// The generic gradient check itself: it must catch a wrong gradient.
#include "tools/gradient_check.hpp"
#include "helpers.hpp"
#include "model/network.hpp"

#include <backplane/plugin.hpp>

#include <cstring>

// Every built-in plugin passing all of check-plugin's checks (gradients included)
// is in test_certify.cpp; this file checks the checker.

TEST_CASE("the gradient check catches a wrong gradient", "[gradients]") {
    // relu's derivative used for tanh: forward is right, backward is not.
    struct WrongTanh final : bp::Layer {
        bp::Shape build(const bp::Shape& in, const bp::Random&) override { return in; }
        void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext&) const override {
            y = x.array().tanh();
        }
        void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                      std::span<bp::Matrix>, bp::Workspace*, const bp::StepContext&) const override {
            dx = (x.array() > 0).select(dy, 0.0f);
        }
    } wrong;
    const auto r = bp::check_layer(wrong, {bp::Shape{5}}, 1, true);
    CHECK_FALSE(r.passed());
    CHECK(r.failures.size() > 0);
}

namespace {

// y = x plus a deterministic, non-smooth error of +-3e-5 on every `every`-th input,
// its sign a hash of x's bits: like float rounding, it changes by its full size between
// x + h and x - h about half the time, and the difference at step h divides that by h
// (0.03 at h = 1e-3, above the tolerance; 0.0075 at 4h, below). dx = dy is right.
struct NoisyIdentity final : bp::Layer {
    explicit NoisyIdentity(int64_t every) : every(every) {}
    int64_t every;
    bp::Shape build(const bp::Shape& in, const bp::Random&) override { return in; }
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext&) const override {
        for (int64_t r = 0; r < x.rows(); ++r)
            for (int64_t i = 0; i < x.cols(); ++i) {
                const float value = x(r, i);
                uint32_t bits;
                std::memcpy(&bits, &value, sizeof bits);
                const float noise = (bits * 2654435761u) >> 31 ? 3e-5f : -3e-5f;
                y(r, i) = x(r, i) + (i % every == 0 ? noise : 0.0f);
            }
    }
    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix>, bp::Workspace*, const bp::StepContext&) const override {
        dx = dy;
    }
};

}  // namespace

TEST_CASE("the gradient check tells float rounding from a wrong gradient, and bounds how much it forgives",
          "[gradients]") {
    // Rounding in 4% of the inputs: those points disagree at the step h, agree at 4h
    // and 16h, and the layer passes.
    NoisyIdentity some(25);
    const auto r = bp::check_layer(some, {bp::Shape{100}}, 1, true);
    CHECK(r.passed());
    CHECK(r.rounding > 0);
    CHECK(r.rounding * 20 <= r.checked);
    // Rounding everywhere: the check proves too little, and says so.
    NoisyIdentity all(1);
    const auto everywhere = bp::check_layer(all, {bp::Shape{100}}, 1, true);
    CHECK_FALSE(everywhere.passed());
    CHECK(everywhere.rounding * 20 > everywhere.checked);
    CHECK_THAT(everywhere.report(), Catch::Contains("too many points needed larger steps"));
}

TEST_CASE("the gradient check's report keeps its counts after a long subject", "[gradients]") {
    bp::GradientCheckResult r;
    r.subject = std::string(400, 's');
    r.checked = 7;
    CHECK_THAT(r.report(), Catch::Contains(r.subject + ": 7 points, 0 at kinks, 0 at larger steps"));
}
