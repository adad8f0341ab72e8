// The generic gradient check itself: it must catch a wrong gradient.
#include "gradient_check.hpp"
#include "helpers.hpp"
#include "network.hpp"

#include <backplane/plugin.hpp>

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
    const auto r = bp::check_layer(wrong, bp::Shape{5}, 1, true);
    CHECK_FALSE(r.passed());
    CHECK(r.failures.size() > 0);
}
