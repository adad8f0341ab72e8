// The plugin entry points. A plugin library defines them with BACKPLANE_PLUGIN:
//
//   BACKPLANE_PLUGIN("my-layers", "1.0.0") {
//       manifest.layer<MyLayer>("my_layer", "what it does", MyLayer::schema());
//   }
#pragma once

#include "backplane/components.hpp"
#include "backplane/version.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

// The ABI rule (docs/writing-plugins.md): bump on any change that makes a plugin built
// against the previous sdk unsafe to load: a virtual function, data member or base of
// any class or struct in this folder, a factory signature, the Manifest, the entry
// points below, or the sdk's compile definitions. New inline helpers, docs and
// comments do not bump it. The loader refuses a library built with another number
// before touching anything else, and names the SDK release it was built against.
#define BACKPLANE_ABI_VERSION 9u

namespace bp {

template <class T>
using Factory = std::function<std::unique_ptr<T>(const Params&, const Services&)>;

// Index order is the Kind order; add alternatives only at the end.
using AnyFactory = std::variant<Factory<Layer>, Factory<Activation>, Factory<Loss>, Factory<Optimizer>,
                                Factory<Dataset>, Factory<Schedule>>;

enum class Kind { layer, activation, loss, optimizer, dataset, schedule };
constexpr Kind kinds[] = {Kind::layer, Kind::activation, Kind::loss, Kind::optimizer, Kind::dataset, Kind::schedule};

// The Kind of a component interface: kind_of<Layer> == Kind::layer.
template <class T, std::size_t I = 0>
constexpr Kind kind_index() {
    if constexpr (std::is_same_v<std::variant_alternative_t<I, AnyFactory>, Factory<T>>) return static_cast<Kind>(I);
    else return kind_index<T, I + 1>();
}
template <class T>
constexpr Kind kind_of = kind_index<T>();

inline const char* to_string(Kind k) {
    static const char* names[] = {"layer", "activation", "loss", "optimizer", "dataset", "schedule"};
    return names[static_cast<int>(k)];
}

// One configuration the generic checks (gradients, determinism) build a layer or
// activation in: input shapes, and parameters set off their defaults.
struct CheckCase {
    Shape input;
    std::map<std::string, Value> params = {};
    // A merge layer's second, third, ... inputs; `input` is its first.
    std::vector<Shape> more_inputs = {};
    // > 0: the first input holds integers in [0, indices) (an embedding's token ids):
    // the checks draw such inputs, and check no gradient with respect to them.
    int64_t indices = 0;
};

struct ComponentInfo {
    std::string name;
    std::string doc;                 // one line
    Schema schema;
    AnyFactory factory;
    // Where the generic checks build it (layers and activations only). Each case is
    // also run with every choice, bool and activation parameter moved off its default.
    std::vector<CheckCase> checks;

    Kind kind() const { return static_cast<Kind>(factory.index()); }
};

struct Manifest {
    std::string plugin;      // the library's own name
    std::string version;     // the library's own version
    std::vector<ComponentInfo> components;

    template <class T> Manifest& layer(std::string name, std::string doc, Schema schema,
                                       std::vector<CheckCase> checks = {{Shape{7}}, {Shape{2, 3}}}) {
        return add<Layer, T>(std::move(name), std::move(doc), std::move(schema), std::move(checks));
    }
    template <class T> Manifest& activation(std::string name, std::string doc, Schema schema = {},
                                            std::vector<CheckCase> checks = {{Shape{7}}, {Shape{2, 3}}}) {
        return add<Activation, T>(std::move(name), std::move(doc), std::move(schema), std::move(checks));
    }
    template <class T> Manifest& loss(std::string name, std::string doc, Schema schema = {}) {
        return add<Loss, T>(std::move(name), std::move(doc), std::move(schema), {});
    }
    template <class T> Manifest& optimizer(std::string name, std::string doc, Schema schema) {
        return add<Optimizer, T>(std::move(name), std::move(doc), std::move(schema), {});
    }
    template <class T> Manifest& dataset(std::string name, std::string doc, Schema schema) {
        return add<Dataset, T>(std::move(name), std::move(doc), std::move(schema), {});
    }
    template <class T> Manifest& schedule(std::string name, std::string doc, Schema schema = {}) {
        return add<Schedule, T>(std::move(name), std::move(doc), std::move(schema), {});
    }

private:
    // T is constructed from (const Params&, const Services&), (const Params&) or ().
    template <class Base, class T>
    Manifest& add(std::string name, std::string doc, Schema schema, std::vector<CheckCase> checks) {
        Factory<Base> make = [](const Params& p, const Services& s) -> std::unique_ptr<Base> {
            if constexpr (std::is_constructible_v<T, const Params&, const Services&>)
                return std::make_unique<T>(p, s);
            else if constexpr (std::is_constructible_v<T, const Params&>)
                return std::make_unique<T>(p);
            else
                return std::make_unique<T>();
        };
        components.push_back({std::move(name), std::move(doc), std::move(schema), std::move(make),
                              std::move(checks)});
        return *this;
    }
};

}  // namespace bp

// The C entry points the loader looks for, in this order: the ABI version; the SDK
// release, read only to explain an ABI mismatch; the manifest.
#define BACKPLANE_ABI_SYMBOL "backplane_abi_version"
#define BACKPLANE_SDK_VERSION_SYMBOL "backplane_sdk_version"
#define BACKPLANE_MANIFEST_SYMBOL "backplane_manifest"

#define BACKPLANE_PLUGIN(NAME, VERSION)                                                        \
    static void backplane_register(::bp::Manifest& manifest);                                  \
    extern "C" BACKPLANE_API uint32_t backplane_abi_version() { return BACKPLANE_ABI_VERSION; } \
    extern "C" BACKPLANE_API const char* backplane_sdk_version() { return BACKPLANE_VERSION; }  \
    extern "C" BACKPLANE_API const ::bp::Manifest* backplane_manifest() {                      \
        static const ::bp::Manifest built = [] {                                               \
            ::bp::Manifest m{NAME, VERSION, {}};                                               \
            backplane_register(m);                                                             \
            return m;                                                                          \
        }();                                                                                   \
        return &built;                                                                         \
    }                                                                                          \
    static void backplane_register(::bp::Manifest& manifest)
