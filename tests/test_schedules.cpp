// Learning-rate schedules: values worked out by hand, a generic check over every
// schedule the registry holds, and the rate of each epoch in metrics.csv.
#include "model/experiment.hpp"
#include "helpers.hpp"

#include <cmath>
#include <span>

namespace {

// The rate of each epoch from base 0.1; epoch e sees results[0 .. e-2] as the
// validation losses of the epochs before (other metrics NaN).
std::vector<double> rates(const std::string& name, const std::map<std::string, bp::Value>& set, int64_t epochs,
                          const std::vector<double>& losses = {}) {
    auto& registry = test::builtin_registry();
    bp::Params p = bp::Params::defaults(registry.get(bp::Kind::schedule, name).info->schema);
    for (const auto& [k, v] : set) p.set(k, v);
    const auto s = registry.create<bp::Schedule>(name, p);
    std::vector<bp::EpochMetrics> history;
    for (double l : losses) {
        bp::EpochMetrics m;
        m.validation.loss = l;
        history.push_back(m);
    }
    std::vector<double> out;
    for (int64_t e = 1; e <= epochs; ++e)
        out.push_back(s->learning_rate(0.1, e, epochs, std::span(history).first(std::min<std::size_t>(e - 1, history.size()))));
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
    check_rates(rates("multistep", {{"milestones", std::string("2, 4")}, {"gamma", 0.5}}, 5),
                {0.1, 0.1, 0.05, 0.05, 0.025});
}

TEST_CASE("reduce_on_plateau replays torch's ReduceLROnPlateau over the history", "[schedules]") {
    // patience 1: a second epoch without improvement (2 bad > 1) cuts the rate; cooldown 1
    // then zeroes the count once. Losses: 1.0 best; 1.0 and 0.99995, not better by 1e-4
    // (bad 1, 2: cut to 0.05 for epoch 4); 0.9 better (the cooldown passes); 0.95, 0.95
    // (bad 1, 2: cut to 0.025 for epoch 7); 0.95 (bad 1, zeroed by the new cooldown).
    check_rates(rates("reduce_on_plateau", {{"patience", int64_t(1)}, {"factor", 0.5}, {"cooldown", int64_t(1)}}, 8,
                      {1.0, 1.0, 0.99995, 0.9, 0.95, 0.95, 0.95}),
                {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025});
    // A NaN among numbers is an epoch without improvement (torch), not an error.
    check_rates(rates("reduce_on_plateau", {{"patience", int64_t(0)}, {"factor", 0.5}}, 3, {1.0, std::nan("")}),
                {0.1, 0.1, 0.05});
    // Not below min_lr.
    check_rates(rates("reduce_on_plateau", {{"patience", int64_t(0)}, {"factor", 0.1}, {"min_lr", 0.005}}, 4,
                      {1.0, 2.0, 3.0}),
                {0.1, 0.1, 0.01, 0.005});
}

TEST_CASE("warmup rises linearly in front of any schedule, which then runs over the rest", "[schedules]") {
    auto& registry = test::builtin_registry();
    auto rates_of = [&](const std::string& schedule) {
        const auto e = bp::load_experiment(std::filesystem::path(BACKPLANE_EXPERIMENTS) / "xor.yaml",
                                           {"train.epochs=5", "optimizer.lr=0.1", "optimizer.schedule=" + schedule},
                                           registry);
        const auto s = registry.create<bp::Schedule>(e.schedule.name, e.schedule.params);
        std::vector<double> out;
        for (int64_t epoch = 1; epoch <= 5; ++epoch) out.push_back(bp::scheduled_rate(e, *s, 0.1, epoch, {}));
        return out;
    };
    // Two warmup epochs climb to the base, then the cosine over the remaining three.
    check_rates(rates_of("{name: cosine, warmup: 2}"), {0.1 / 3, 0.2 / 3, 0.1, 0.05, 0.0});
    check_rates(rates_of("{name: step, step_size: 1, gamma: 0.5, warmup: 1}"), {0.05, 0.1, 0.05, 0.025, 0.0125});
    CHECK_THAT(test::error_of([&] { rates_of("{name: step, warmup: 5}"); }),
               Catch::Contains("optimizer.schedule.warmup = 5 leaves no epoch of the 5 for the schedule"));
}

TEST_CASE("a schedule watching a metric the run does not measure is refused before training", "[schedules]") {
    auto& registry = test::builtin_registry();
    const auto e = bp::load_experiment(std::filesystem::path(BACKPLANE_EXPERIMENTS) / "xor.yaml",
                                       {"optimizer.schedule={name: reduce_on_plateau}"}, registry);
    CHECK_THAT(test::error_of([&] { bp::prepare_run(e, registry); }),
               Catch::Contains("reduce_on_plateau watches val_loss, which this run does not measure") &&
                   Catch::Contains("--set optimizer.schedule={name: reduce_on_plateau}: "));
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
