// The generic gradient check over every layer, activation and loss in the
// registry: a plugin added later is covered here without a new test.
#include "gradient_check.hpp"
#include "helpers.hpp"
#include "network.hpp"

#include <backplane/plugin.hpp>

namespace {

void check_every_layer_like(bp::Kind kind) {
    auto& registry = test::builtin_registry();
    REQUIRE(!registry.components(kind).empty());
    for (const auto& [name, c] : registry.components(kind)) {
        REQUIRE(!c.info->checks.empty());
        for (const auto& check : c.info->checks) {
            for (auto params : bp::parameter_variants(c.info->schema, registry)) {
                for (const auto& [key, value] : check.params) params.set(key, value);
                const bp::Shape& shape = check.input;
                for (const auto& [seed, training] : {std::pair{1, true}, {2, true}, {3, false}}) {
                    bp::ComponentConfig config{kind, name, params, "test"};
                    auto layer = bp::make_layer(config, registry);
                    auto r = bp::check_layer(*layer, shape, uint64_t(seed), training);
                    r.subject = std::string(bp::to_string(kind)) + " " + name + " " + bp::describe(params) + " on " +
                                shape.str() + " seed " + std::to_string(seed) + (training ? "" : " (evaluation)");
                    INFO(r.report());
                    CHECK(r.checked > 0);
                    CHECK(r.passed());
                }
            }
        }
    }
}

}  // namespace

TEST_CASE("every layer's gradients match central differences", "[gradients]") {
    check_every_layer_like(bp::Kind::layer);
}

TEST_CASE("every activation's gradients match central differences", "[gradients]") {
    check_every_layer_like(bp::Kind::activation);
}

TEST_CASE("every loss's gradients match central differences", "[gradients]") {
    // The loss's own check() picks which of these prediction/target pairings it accepts.
    const std::vector<std::pair<bp::Shape, bp::TargetInfo>> pairings = {
        {bp::Shape{3}, {1, 3}}, {bp::Shape{2}, {1, 2}}, {bp::Shape{1}, {1, 2}},
        {bp::Shape{4}, {4, 0}}, {bp::Shape{1}, {1, 0}},
    };
    auto& registry = test::builtin_registry();
    for (const auto& [name, c] : registry.components(bp::Kind::loss)) {
        for (const auto& params : bp::parameter_variants(c.info->schema, registry)) {
            auto loss = registry.create<bp::Loss>(name, params);
            int accepted = 0;
            for (const auto& [pred, targets] : pairings) {
                try {
                    loss->check(pred, targets);
                } catch (const bp::Error&) {
                    continue;
                }
                ++accepted;
                for (uint64_t seed : {1, 2, 3}) {
                    auto r = bp::check_loss(*loss, pred, targets, seed);
                    r.subject = "loss " + name + " " + bp::describe(params) + " pred " + pred.str() + " classes " +
                                std::to_string(targets.classes) + " seed " + std::to_string(seed);
                    INFO(r.report());
                    CHECK(r.passed());
                }
            }
            INFO("loss " << name);
            CHECK(accepted > 0);
        }
    }
}

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
