// Every component of every built-in plugin passes what `backplane check-plugin` runs
// (core/tools/certify.hpp): schema, gradients, determinism at 1 and 4 threads, resume. A
// plugin added to the built-in folder is covered here without a new test.
#include "tools/certify.hpp"
#include "helpers.hpp"

TEST_CASE("every built-in component passes check-plugin's checks", "[certify][gradients][determinism]") {
    auto& registry = test::builtin_registry();
    // csv reads a file, as a user's check-plugin --set csv.path=... would give it.
    const auto csv = test::write_file(test::temp_dir("certify-csv") / "data.csv", "a,b,label\n0,1,0\n1,0,1\n0.5,2,2\n");
    const bp::CertifyOptions options{4, {"csv.path=" + csv.string()}};
    int certified = 0;
    for (const bp::Kind kind : bp::kinds) {
        for (const auto& [name, c] : registry.components(kind)) {
            const bp::Certificate cert = bp::certify(registry, kind, name, options);
            INFO(cert.report());
            CHECK(cert.passed());
            ++certified;
        }
    }
    CHECK(certified >= 30);
}

TEST_CASE("a check that cannot run fails the certificate", "[certify]") {
    // csv without a file to read: nothing about its data was shown.
    const auto cert = bp::certify(test::builtin_registry(), bp::Kind::dataset, "csv");
    CHECK_FALSE(cert.passed());
    CHECK_THAT(cert.report(), Catch::Contains("FAIL  data") && Catch::Contains("--set csv.KEY=VALUE"));
    const auto typo = bp::certify(test::builtin_registry(), bp::Kind::dataset, "csv", {4, {"csv.pth=x"}});
    CHECK_FALSE(typo.passed());
    CHECK_THAT(typo.report(), Catch::Contains("--set csv.pth=x: csv has no parameter 'pth' (did you mean 'path'?)"));
}

namespace {

// The report of `name` from tests/broken_plugins/blind_spots.cpp, loaded beside the built-ins.
bp::Certificate certify_blind_spot(bp::Kind kind, const std::string& name) {
    static bp::Registry registry = [] {
        bp::Registry r;
        r.load_path(bp::builtin_plugin_dir());
        r.load_path(std::filesystem::path(BACKPLANE_TEST_PLUGINS) / "blind_spots" / "libblind_spots.so");
        return r;
    }();
    return bp::certify(registry, kind, name);
}

// The outcome of one check in a certificate, or nullptr when it did not run.
const bp::CheckOutcome* outcome(const bp::Certificate& c, const std::string& check) {
    for (const auto& o : c.checks)
        if (o.check == check) return &o;
    return nullptr;
}

}  // namespace

TEST_CASE("check-plugin checks gradients away from the initial parameters", "[certify][gradients]") {
    const auto cert = certify_blind_spot(bp::Kind::layer, "gainless_norm");
    INFO(cert.report());
    CHECK_FALSE(cert.passed());
    REQUIRE(outcome(cert, "gradients"));
    CHECK_FALSE(outcome(cert, "gradients")->passed);
}

TEST_CASE("check-plugin finds a loss that is not a sum over rows", "[certify]") {
    const auto cert = certify_blind_spot(bp::Kind::loss, "mean_loss");
    INFO(cert.report());
    REQUIRE(outcome(cert, "rows"));
    CHECK_FALSE(outcome(cert, "rows")->passed);
    CHECK_THAT(outcome(cert, "rows")->detail, Catch::Contains("must return the sum over rows"));
}

TEST_CASE("check-plugin finds an end_step that reads past the workspace's step statistics", "[certify][mpi]") {
    const auto cert = certify_blind_spot(bp::Kind::layer, "hidden_statistics");
    INFO(cert.report());
    REQUIRE(outcome(cert, "isolation"));
    CHECK_FALSE(outcome(cert, "isolation")->passed);
    CHECK_THAT(outcome(cert, "isolation")->detail,
               Catch::Contains("end_step folds another running_mean from workspaces holding only their "
                               "step_statistics()"));
}

TEST_CASE("check-plugin finds a layer that keeps a shard's data in itself", "[certify]") {
    const auto cert = certify_blind_spot(bp::Kind::layer, "cached_scale");
    INFO(cert.report());
    REQUIRE(outcome(cert, "isolation"));
    CHECK_FALSE(outcome(cert, "isolation")->passed);
    // Found as what it is, not as a resume or determinism failure.
    CHECK(outcome(cert, "resume") == nullptr);
}
