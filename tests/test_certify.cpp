// Every component of every built-in plugin passes what `backplane check-plugin` runs
// (core/tools/certify.hpp): schema, gradients, determinism at 1 and 4 threads, resume. A
// plugin added to the built-in folder is covered here without a new test.
#include "tools/certify.hpp"
#include "helpers.hpp"

TEST_CASE("every built-in component passes check-plugin's checks", "[certify][gradients][determinism]") {
    auto& registry = test::builtin_registry();
    int certified = 0;
    for (const bp::Kind kind : bp::kinds) {
        for (const auto& [name, c] : registry.components(kind)) {
            const bp::Certificate cert = bp::certify(registry, kind, name);
            INFO(cert.report());
            CHECK(cert.passed());
            ++certified;
        }
    }
    CHECK(certified >= 30);
}
