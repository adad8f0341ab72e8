// Learning-rate schedules: values worked out by hand, a generic check over every
// schedule the registry holds, and the rate of each epoch in metrics.csv.
#include "experiment.hpp"
#include "helpers.hpp"

#include <cmath>

namespace {

std::vector<double> rates(const std::string& name, const std::map<std::string, bp::Value>& set, int64_t epochs) {
    auto& registry = test::builtin_registry();
    bp::Params p = bp::Params::defaults(registry.get(bp::Kind::schedule, name).info->schema);
    for (const auto& [k, v] : set) p.set(k, v);
    const auto s = registry.create<bp::Schedule>(name, p);
    std::vector<double> out;
    for (int64_t e = 1; e <= epochs; ++e) out.push_back(s->learning_rate(0.1, e, epochs));
    return out;
}

void check_rates(const std::vector<double>& got, const std::vector<double>& want) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        INFO("epoch " << i + 1);
        CHECK(got[i] == Approx(want[i]).epsilon(1e-12));
    }
}

}  // namespace

TEST_CASE("schedules give the hand-computed rates", "[schedules]") {
    check_rates(rates("constant", {}, 3), {0.1, 0.1, 0.1});
    check_rates(rates("step", {{"step_size", int64_t(2)}, {"gamma", 0.5}}, 5), {0.1, 0.1, 0.05, 0.05, 0.025});
    check_rates(rates("exponential", {{"gamma", 0.5}}, 3), {0.1, 0.05, 0.025});
    // cos(0) = 1, cos(pi/2) = 0, cos(pi) = -1 over epochs 1..3.
    check_rates(rates("cosine", {}, 3), {0.1, 0.05, 0.0});
    check_rates(rates("cosine", {{"min_factor", 0.1}}, 3), {0.1, 0.055, 0.01});
    // Two warmup epochs climb to the base, then the cosine over the remaining three.
    check_rates(rates("cosine", {{"warmup", int64_t(2)}}, 5), {0.1 / 3, 0.2 / 3, 0.1, 0.05, 0.0});
}

TEST_CASE("every schedule gives finite rates between 0 and the base", "[schedules]") {
    auto& registry = test::builtin_registry();
    REQUIRE(registry.components(bp::Kind::schedule).size() >= 4);
    for (const auto& [name, c] : registry.components(bp::Kind::schedule)) {
        for (int64_t epochs : {1, 2, 7, 100}) {
            for (double r : rates(name, {}, epochs)) {
                INFO(name << " over " << epochs << " epochs");
                CHECK(std::isfinite(r));
                CHECK(r >= 0);
                CHECK(r <= 0.1 + 1e-15);
            }
        }
    }
}

TEST_CASE("the schedule's rate reaches the optimizer and metrics.csv", "[schedules]") {
    auto& registry = test::builtin_registry();
    const auto e = bp::load_experiment(std::filesystem::path(BACKPLANE_EXPERIMENTS) / "xor.yaml",
                                       {"train.epochs=3", "optimizer.schedule={name: step, step_size: 1, gamma: 0.5}"},
                                       registry);
    CHECK(e.schedule.name == "step");
    const auto r = test::run_quietly(e, test::temp_dir("schedule-run"));
    REQUIRE(r.history.size() == 3);
    CHECK(r.history[0].learning_rate == 0.5);
    CHECK(r.history[1].learning_rate == 0.25);
    CHECK(r.history[2].learning_rate == 0.125);
    CHECK_THAT(test::read_file(r.dir / "metrics.csv"), Catch::EndsWith(",0.125\n"));
    // The resolved config keeps the schedule, and an unknown one is named.
    CHECK_THAT(bp::to_yaml(e), Catch::Contains("schedule: {name: step, gamma: 0.5, step_size: 1}"));
    CHECK_THAT(test::error_of([&] {
                   bp::load_experiment(std::filesystem::path(BACKPLANE_EXPERIMENTS) / "xor.yaml",
                                       {"optimizer.schedule=cosin"}, registry);
               }),
               Catch::Contains("unknown schedule 'cosin' (did you mean 'cosine'?)"));
}
