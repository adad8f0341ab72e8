// Optimizer updates against reference values for three steps from w = [1, -2] with
// gradients [0.5, -1], [0.1, 0.2], [-0.3, 0.4]: worked out by hand for sgd and adam,
// and from torch.optim 1.13 in float64 (torch.nn.utils.clip_grad_value_ then
// clip_grad_norm_ for clipping) for the others. By the papers' rules in Python: Lion,
// which torch 1.13 lacks, and NAdam, whose 1.13 version counts mu_t twice in
// mu_product_next (fixed in torch 2.0, which these values follow). Then every optimizer the registry holds must converge on
// a convex quadratic and on Rosenbrock's function.
#include "helpers.hpp"

#include <backplane/plugin.hpp>

#include <functional>
#include <limits>
#include <map>

namespace {

using Steps = std::vector<std::array<double, 2>>;

Steps run_optimizer(const std::string& name, const std::map<std::string, bp::Value>& set) {
    auto& registry = test::builtin_registry();
    bp::Params params = bp::Params::defaults(registry.get(bp::Kind::optimizer, name).info->schema);
    for (const auto& [k, v] : set) params.set(k, v);
    auto opt = registry.create<bp::Optimizer>(name, params);

    bp::Matrix w(1, 2), g(1, 2);
    w << 1.0f, -2.0f;
    const std::string pname = "0.test.weight";
    std::vector<bp::ParameterRef> refs{{pname, w, g, pname, bp::ParameterRole::weight, 1.0f}};
    const float grads[3][2] = {{0.5f, -1.0f}, {0.1f, 0.2f}, {-0.3f, 0.4f}};
    Steps out;
    for (const auto& step : grads) {
        g << step[0], step[1];
        opt->step(refs);
        out.push_back({w(0, 0), w(0, 1)});
    }
    return out;
}

void check_steps(const Steps& got, const Steps& want) {
    REQUIRE(got.size() == want.size());
    for (std::size_t s = 0; s < want.size(); ++s)
        for (int i = 0; i < 2; ++i) {
            INFO("step " << s + 1 << " element " << i);
            CHECK(got[s][i] == Approx(want[s][i]).epsilon(1e-6));
        }
}

}  // namespace

TEST_CASE("sgd follows the hand-computed updates", "[optimizers]") {
    SECTION("plain, lr 0.1") {
        check_steps(run_optimizer("sgd", {{"lr", 0.1}}), {{0.95, -1.9}, {0.94, -1.92}, {0.97, -1.96}});
    }
    SECTION("momentum 0.9") {
        check_steps(run_optimizer("sgd", {{"lr", 0.1}, {"momentum", 0.9}}),
                    {{0.95, -1.9}, {0.895, -1.83}, {0.8755, -1.807}});
    }
    SECTION("nesterov") {
        check_steps(run_optimizer("sgd", {{"lr", 0.1}, {"momentum", 0.9}, {"nesterov", true}}),
                    {{0.905, -1.81}, {0.8455, -1.767}, {0.85795, -1.7863}});
    }
    SECTION("momentum with weight decay 0.1") {
        check_steps(run_optimizer("sgd", {{"lr", 0.1}, {"momentum", 0.9}, {"weight_decay", 0.1}}),
                    {{0.94, -1.88}, {0.8666, -1.7732}, {0.821874, -1.699348}});
    }
    SECTION("momentum with dampening 0.5") {
        check_steps(run_optimizer("sgd", {{"lr", 0.1}, {"momentum", 0.9}, {"dampening", 0.5}}),
                    {{0.95, -1.9}, {0.9, -1.82}, {0.87, -1.768}});
    }
}

TEST_CASE("adam follows the hand-computed updates, bias correction included", "[optimizers]") {
    SECTION("lr 0.1") {
        check_steps(run_optimizer("adam", {{"lr", 0.1}}),
                    {{0.900000002, -1.900000001}, {0.819695906, -1.848897394}, {0.798624612, -1.835473434}});
    }
    SECTION("weight decay 0.1") {
        check_steps(run_optimizer("adam", {{"lr", 0.1}, {"weight_decay", 0.1}}),
                    {{0.900000002, -1.900000001}, {0.813648345, -1.833616908}, {0.771581821, -1.794480219}});
    }
}

TEST_CASE("gradient clipping by value and by global norm, as torch.nn.utils", "[optimizers]") {
    SECTION("by norm 0.5") {
        check_steps(run_optimizer("sgd", {{"lr", 0.1}, {"clip_norm", 0.5}}),
                    {{0.977639340, -1.955278680}, {0.967639340, -1.975278680}, {0.997639280, -2.015278600}});
    }
    SECTION("by value 0.25") {
        check_steps(run_optimizer("sgd", {{"lr", 0.1}, {"clip_value", 0.25}}),
                    {{0.975, -1.975}, {0.965, -1.995}, {0.99, -2.02}});
    }
    SECTION("both, with momentum") {
        check_steps(run_optimizer("sgd", {{"lr", 0.1}, {"momentum", 0.9}, {"clip_value", 0.4}, {"clip_norm", 0.5}}),
                    {{0.964644723, -1.964644723}, {0.922824975, -1.952824975}, {0.915187141, -1.982187121}});
    }
}

TEST_CASE("adagrad, rmsprop, amsgrad, adamw, nadam and lion follow the reference updates", "[optimizers]") {
    SECTION("adagrad") {
        check_steps(run_optimizer("adagrad", {{"lr", 0.1}}),
                    {{0.9, -1.9}, {0.880388387, -1.919611614}, {0.931097642, -1.956126451}});
    }
    SECTION("adagrad, initial accumulator 0.1, weight decay 0.1") {
        check_steps(run_optimizer("adagrad", {{"lr", 0.1}, {"initial_accumulator", 0.1}, {"weight_decay", 0.1}}),
                    {{0.911534826, -1.903301244}, {0.884407609, -1.904080441}, {0.913162664, -1.920733498}});
    }
    SECTION("rmsprop") {
        check_steps(run_optimizer("rmsprop", {{"lr", 0.01}}),
                    {{0.900000020, -1.900000010}, {0.880293438, -1.919706594}, {0.931374374, -1.956534257}});
    }
    SECTION("rmsprop, centred, momentum 0.9") {
        check_steps(run_optimizer("rmsprop", {{"lr", 0.01}, {"centered", true}, {"momentum", 0.9}}),
                    {{0.899496239, -1.899496229}, {0.789199390, -1.828809394}, {0.741075141, -1.802041716}});
    }
    SECTION("adam, beta2 0.5, with and without amsgrad") {
        check_steps(run_optimizer("adam", {{"lr", 0.1}, {"beta2", 0.5}}),
                    {{0.900000002, -1.900000001}, {0.803508777, -1.838596493}, {0.779523538, -1.821474933}});
        check_steps(run_optimizer("adam", {{"lr", 0.1}, {"beta2", 0.5}, {"amsgrad", true}}),
                    {{0.900000002, -1.900000001}, {0.829093722, -1.854877822}, {0.810056028, -1.843650464}});
    }
    SECTION("adamw, default decoupled weight decay 0.01") {
        check_steps(run_optimizer("adamw", {{"lr", 0.1}}),
                    {{0.899000002, -1.898000001}, {0.817796906, -1.844999394}, {0.795907815, -1.829730435}});
    }
    SECTION("adamw, weight decay 0.1, amsgrad") {
        check_steps(run_optimizer("adamw", {{"lr", 0.1}, {"weight_decay", 0.1}, {"amsgrad", true}}),
                    {{0.890000002, -1.880000001}, {0.800795906, -1.810097394}, {0.771716653, -1.778572460}});
    }
    SECTION("nadam") {
        check_steps(run_optimizer("nadam", {{"lr", 0.1}}),
                    {{0.894354824, -1.894354823}, {0.867666709, -1.908673933}, {0.918131705, -1.945240121}});
    }
    SECTION("nadam, weight decay 0.1") {
        check_steps(run_optimizer("nadam", {{"lr", 0.1}, {"weight_decay", 0.1}}),
                    {{0.894354824, -1.894354823}, {0.856864460, -1.888968367}, {0.885248355, -1.902112743}});
    }
    SECTION("lion, weight decay 0.1") {
        check_steps(run_optimizer("lion", {{"lr", 0.1}, {"weight_decay", 0.1}}),
                    {{0.89, -1.88}, {0.7811, -1.9612}, {0.873289, -2.041588}});
    }
}

TEST_CASE("sgd refuses nesterov without momentum", "[optimizers]") {
    const auto msg = test::error_of([] { run_optimizer("sgd", {{"nesterov", true}}); });
    CHECK_THAT(msg, Catch::Contains("nesterov needs momentum > 0"));
}

namespace {

// f(w) and its gradient at w, for two parameters.
using Objective = std::function<double(const bp::Matrix& w, bp::Matrix& grad)>;

// The distance to `optimum` after `steps` steps from `start` at rate `lr`.
double minimise(const std::string& name, const bp::Params& params, double lr, const Objective& f,
                const bp::Matrix& start, const bp::Matrix& optimum, int steps) {
    auto opt = test::builtin_registry().create<bp::Optimizer>(name, params);
    opt->set_learning_rate(lr);
    bp::Matrix w = start, g(1, 2);
    const std::string pname = "w";
    std::vector<bp::ParameterRef> refs{{pname, w, g, pname, bp::ParameterRole::weight, 1.0f}};
    for (int s = 0; s < steps; ++s) {
        f(w, g);
        opt->step(refs);
    }
    return (w - optimum).norm();
}

// Each optimizer with its defaults, at the best of a grid of learning rates (as
// ensmallen's tests pick a rate per optimizer, without knowing the optimizer).
void converges_on(const Objective& f, const bp::Matrix& start, const bp::Matrix& optimum, int steps, double tolerance) {
    auto& registry = test::builtin_registry();
    REQUIRE(registry.names(bp::Kind::optimizer).size() >= 7);
    for (const auto& [name, c] : registry.components(bp::Kind::optimizer)) {
        const bp::Params params = bp::Params::defaults(c.info->schema);
        double best = std::numeric_limits<double>::infinity(), best_lr = 0;
        for (double lr : {1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001}) {
            const double d = minimise(name, params, lr, f, start, optimum, steps);
            if (d < best) best = d, best_lr = lr;
        }
        INFO(name << ": distance " << best << " at lr " << best_lr);
        CHECK(best < tolerance);
    }
}

}  // namespace

TEST_CASE("every optimizer minimises an ill-conditioned convex quadratic", "[optimizers]") {
    // f = 0.5 (w0 - 1)^2 + 5 (w1 + 2)^2: curvatures 1 and 10.
    const Objective f = [](const bp::Matrix& w, bp::Matrix& g) {
        g << w(0, 0) - 1.0f, 10.0f * (w(0, 1) + 2.0f);
        return 0.5 * std::pow(w(0, 0) - 1.0, 2) + 5.0 * std::pow(w(0, 1) + 2.0, 2);
    };
    bp::Matrix start(1, 2), optimum(1, 2);
    start << -3.0f, 4.0f;
    optimum << 1.0f, -2.0f;
    converges_on(f, start, optimum, 5000, 1e-2);
}

TEST_CASE("every optimizer finds Rosenbrock's minimum", "[optimizers]") {
    // f = (1 - x)^2 + 100 (y - x^2)^2 from (-1.2, 1): the minimum (1, 1) at the end of a
    // long curved valley.
    const Objective f = [](const bp::Matrix& w, bp::Matrix& g) {
        const double x = w(0, 0), y = w(0, 1);
        g << float(-2.0 * (1.0 - x) - 400.0 * x * (y - x * x)), float(200.0 * (y - x * x));
        return std::pow(1.0 - x, 2) + 100.0 * std::pow(y - x * x, 2);
    };
    bp::Matrix start(1, 2), optimum(1, 2);
    start << -1.2f, 1.0f;
    optimum << 1.0f, 1.0f;
    converges_on(f, start, optimum, 20000, 5e-2);
}

TEST_CASE("optimizer state round-trips, every option that keeps state included", "[optimizers]") {
    const std::vector<std::pair<std::string, std::map<std::string, bp::Value>>> configs = {
        {"sgd", {{"momentum", 0.9}}},         {"adagrad", {}},
        {"rmsprop", {{"momentum", 0.9}, {"centered", true}}},
        {"adam", {{"amsgrad", true}}},        {"adamw", {}},
        {"nadam", {}},                        {"lion", {}},
    };
    auto& registry = test::builtin_registry();
    REQUIRE(configs.size() == registry.names(bp::Kind::optimizer).size());
    for (const auto& [name, set] : configs) {
        bp::Params params = bp::Params::defaults(registry.get(bp::Kind::optimizer, name).info->schema);
        for (const auto& [k, v] : set) params.set(k, v);
        auto a = registry.create<bp::Optimizer>(name, params);
        bp::Matrix wa(2, 2), g(2, 2);
        wa << 1, 2, 3, 4;
        const std::string pname = "p";
        std::vector<bp::ParameterRef> ra{{pname, wa, g, pname, bp::ParameterRole::weight, 1.0f}};
        for (int s = 0; s < 3; ++s) {
            g << 0.1f * float(s + 1), -0.2f, 0.3f, -0.4f / float(s + 1);
            a->step(ra);
        }
        // A fresh optimizer given a's state continues exactly as a does.
        auto c = registry.create<bp::Optimizer>(name, params);
        bp::Matrix wc = wa;
        std::vector<bp::ParameterRef> rc{{pname, wc, g, pname, bp::ParameterRole::weight, 1.0f}};
        c->load_state(a->state());
        for (int s = 0; s < 3; ++s) {
            g << -0.3f, 0.05f * float(s), 0.2f, 0.1f;
            a->step(ra);
            c->step(rc);
        }
        INFO(name);
        CHECK(wa == wc);
    }
}
