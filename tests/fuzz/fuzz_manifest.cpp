// libFuzzer target: the plugin manifest reader (check_manifest, core/model/registry.cpp)
// and what reads YAML against a manifest's schemas (YamlReader::params). The input
// describes a manifest (components of any kind, names, parameters of any type with any
// default, range and choices), then YAML text for the first component's parameters.
// A manifest that check_manifest accepts must have defaults that Params::defaults and
// the reader take, and the reader must answer the YAML with parameters or a bp::Error;
// anything else escaping, a crash or a sanitizer report is a finding.
#include "fuzz_support.hpp"
#include "model/registry.hpp"
#include "model/yaml_reader.hpp"

#include <backplane/plugin.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>

namespace {

struct Nothing final : bp::Layer, bp::Activation, bp::Loss, bp::Optimizer, bp::Dataset, bp::Schedule {
    bp::Shape build(const bp::Shape& input, const bp::Random&) override { return input; }
    void forward(bp::ConstMatrixRef, bp::MatrixRef, bp::Workspace*, const bp::StepContext&) const override {}
    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef, bp::MatrixRef, std::span<bp::Matrix>,
                  bp::Workspace*, const bp::StepContext&) const override {}
    void forward(bp::ConstMatrixRef, bp::MatrixRef) const override {}
    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef, bp::MatrixRef) const override {}
    void check(const bp::Shape&, const bp::TargetInfo&) const override {}
    double evaluate(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::MatrixRef, float) const override { return 0; }
    void step(std::span<bp::ParameterRef>) override {}
    double learning_rate() const override { return 0; }
    void set_learning_rate(double) override {}
    bp::Data load(const bp::DataContext&) const override { return {}; }
    double learning_rate(double, int64_t, int64_t, std::span<const bp::EpochMetrics>) const override { return 0; }
};

bp::Schema schema_from(FuzzedDataProvider& in) {
    bp::Schema s;
    const int params = in.ConsumeIntegralInRange(0, 6);
    for (int i = 0; i < params; ++i) {
        const std::string name = in.ConsumeRandomLengthString(16), doc = "d";
        switch (in.ConsumeIntegralInRange(0, 5)) {
            case 0: s.boolean(name, in.ConsumeBool(), doc); break;
            case 1: {
                const auto a = in.ConsumeIntegral<int64_t>(), b = in.ConsumeIntegral<int64_t>(), c = in.ConsumeIntegral<int64_t>();
                s.integer(name, a, b, c, doc);
                break;
            }
            case 2: {
                const double a = in.ConsumeFloatingPoint<double>(), b = in.ConsumeFloatingPoint<double>(),
                             c = in.ConsumeFloatingPoint<double>();
                s.number(name, a, b, c, doc);
                break;
            }
            case 3: s.text(name, in.ConsumeRandomLengthString(16), doc); break;
            case 4: {
                std::vector<std::string> choices(in.ConsumeIntegralInRange(0, 3));
                for (auto& c : choices) c = in.ConsumeRandomLengthString(8);
                s.choice(name, in.ConsumeRandomLengthString(8), choices, doc);
                break;
            }
            default: s.activation(name, in.ConsumeRandomLengthString(8), doc); break;
        }
    }
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    bp::Manifest m{"fuzz", "1.0", {}};
    const int components = in.ConsumeIntegralInRange(1, 3);
    for (int i = 0; i < components; ++i) {
        const std::string name = in.ConsumeRandomLengthString(16);
        const bp::Schema schema = schema_from(in);
        switch (in.ConsumeIntegralInRange(0, 5)) {
            case 0: m.layer<Nothing>(name, "d", schema); break;
            case 1: m.activation<Nothing>(name, "d", schema); break;
            case 2: m.loss<Nothing>(name, "d", schema); break;
            case 3: m.optimizer<Nothing>(name, "d", schema); break;
            case 4: m.dataset<Nothing>(name, "d", schema); break;
            default: m.schedule<Nothing>(name, "d", schema); break;
        }
    }
    try {
        bp::check_manifest(m);
    } catch (const bp::Error&) {
        return 0;
    }
    const bp::Schema& schema = m.components.front().schema;
    const bp::Params defaults = bp::Params::defaults(schema);
    if (defaults.values().size() != schema.specs().size()) fuzz::broken("a parameter's default is missing");
    const std::string text = in.ConsumeRemainingBytesAsString();
    try {
        bp::YamlReader reader("fuzz.yaml", test::builtin_registry());
        const bp::Params read = reader.params(reader.parse(text), schema, "fuzz");
        if (read.values().size() != schema.specs().size()) fuzz::broken("the reader left a parameter unset");
    } catch (const bp::Error&) {
    }
    return 0;
}
