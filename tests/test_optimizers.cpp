// Optimizer updates against values worked out by hand (PyTorch's rules) for three
// steps from w = [1, -2] with gradients [0.5, -1], [0.1, 0.2], [-0.3, 0.4].
#include "helpers.hpp"

#include <backplane/plugin.hpp>

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
    std::vector<bp::ParameterRef> refs{{pname, w, g}};
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

TEST_CASE("sgd refuses nesterov without momentum", "[optimizers]") {
    const auto msg = test::error_of([] { run_optimizer("sgd", {{"nesterov", true}}); });
    CHECK_THAT(msg, Catch::Contains("nesterov needs momentum > 0"));
}

TEST_CASE("optimizer state round-trips", "[optimizers]") {
    for (const std::string name : {"sgd", "adam"}) {
        auto& registry = test::builtin_registry();
        bp::Params params = bp::Params::defaults(registry.get(bp::Kind::optimizer, name).info->schema);
        if (name == "sgd") params.set("momentum", 0.9);
        auto a = registry.create<bp::Optimizer>(name, params);
        auto b = registry.create<bp::Optimizer>(name, params);
        bp::Matrix wa(2, 2), wb(2, 2), g(2, 2);
        wa << 1, 2, 3, 4;
        wb = wa;
        g << 0.1f, -0.2f, 0.3f, -0.4f;
        const std::string pname = "p";
        std::vector<bp::ParameterRef> ra{{pname, wa, g}}, rb{{pname, wb, g}};
        a->step(ra);
        b->step(rb);
        // A fresh optimizer given a's state continues exactly as a does.
        auto c = registry.create<bp::Optimizer>(name, params);
        bp::Matrix wc = wa;
        std::vector<bp::ParameterRef> rc{{pname, wc, g}};
        c->load_state(a->state());
        a->step(ra);
        c->step(rc);
        INFO(name);
        CHECK(wa == wc);
    }
}
