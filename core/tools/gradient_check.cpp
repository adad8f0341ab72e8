#include "tools/gradient_check.hpp"

#include "model/network.hpp"
#include "train/shard_pass.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace bp {

namespace {

double weighted_sum(ConstMatrixRef y, const Matrix& w) { return (y.cast<double>().array() * w.cast<double>().array()).sum(); }

// Compares analytic derivatives with differences of f at seeded points of `t`.
class Checker {
public:
    Checker(GradientCheckResult& r, const GradientCheckOptions& o, const Random& pick) : r_(r), o_(o), pick_(pick) {}

    // f(): the objective at the current values of t.
    template <class F>
    void tensor(const std::string& name, float* t, int64_t size, const Matrix& analytic, F f) {
        const int64_t count = std::min(size, o_.max_per_tensor);
        for (int64_t k = 0; k < count; ++k) {
            const int64_t i = size <= o_.max_per_tensor ? k : int64_t(pick_.derive(name).below(k, uint64_t(size)));
            const float saved = t[i];
            // f at saved + delta, and the step actually taken after float rounding.
            auto at = [&](double delta, double& taken) {
                t[i] = saved + float(delta);
                taken = double(t[i]) - double(saved);
                const double v = f();
                t[i] = saved;
                return v;
            };
            auto central = [&](double h) {
                double up = 0, down = 0;
                const double plus = at(h, up), minus = at(-h, down);
                return (plus - minus) / (up - down);
            };
            const double a = analytic.data()[i], c = central(o_.step);
            ++r_.checked;
            if (within(a, c)) {
                r_.worst = std::max(r_.worst, error(a, c));
                continue;
            }
            // A kink (relu at 0) inside the step shows as one-sided differences that
            // disagree. Then a smaller step, which the kink likely falls outside of,
            // must agree with the analytic value.
            double up = 0, down = 0;
            const double mid = f();
            const double forward = (at(o_.step, up) - mid) / up, backward = (mid - at(-o_.step, down)) / -down;
            if (!within(forward, backward) && (within(a, central(o_.step / 4)) || within(a, central(o_.step / 16)))) {
                ++r_.kinks;
                continue;
            }
            // Rounding: f is computed in float, and its rounding error, divided by the
            // step, is noise in the difference (Winograd's 3x3 convolution, at 1e-6 of
            // its outputs' scale, misses at h = 1e-3 now and then).
            // Then the differences at larger steps, where that noise is smaller, must
            // both agree; a wrong gradient is wrong at every step.
            if (within(a, central(o_.step * 4)) && within(a, central(o_.step * 16))) {
                ++r_.rounding;
                continue;
            }
            fail(name, i, a, c);
        }
    }

private:
    // |a - b| as a fraction of the tolerance: <= 1 agrees.
    double error(double a, double b) const {
        return std::abs(a - b) / (o_.abs_tol + o_.rel_tol * std::max(std::abs(a), std::abs(b)));
    }
    bool within(double a, double b) const { return error(a, b) <= 1; }

    void fail(const std::string& name, int64_t i, double a, double numeric) {
        if (r_.failures.size() < 5) {
            char buf[200];
            std::snprintf(buf, sizeof buf, "d/d%s[%lld]: analytic %.6g, numeric %.6g", name.c_str(),
                          static_cast<long long>(i), a, numeric);
            r_.failures.push_back(buf);
        } else if (r_.failures.size() == 5) {
            r_.failures.push_back("...");
        }
    }

    GradientCheckResult& r_;
    const GradientCheckOptions& o_;
    Random pick_;
};

Matrix normal_matrix(int64_t rows, int64_t cols, const Random& r) {
    Matrix m(rows, cols);
    for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = float(r.normal(uint64_t(i)));
    return m;
}

}  // namespace

Matrix check_input(int64_t rows, int64_t cols, const Random& r, int64_t indices) {
    if (indices <= 0) return normal_matrix(rows, cols, r);
    Matrix m(rows, cols);
    for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = float(r.below(uint64_t(i), uint64_t(indices)));
    return m;
}

std::string GradientCheckResult::report() const {
    char counts[120];   // the subject (a component's parameters) has no bound: it goes in whole
    std::snprintf(counts, sizeof counts, ": %lld points, %lld at kinks, %lld at larger steps, worst %.2f of tolerance",
                  static_cast<long long>(checked), static_cast<long long>(kinks), static_cast<long long>(rounding),
                  worst);
    std::string out = subject + counts;
    if (kinks * 20 > checked) out += "\n  too many kinks (over 5% of points): the check proves little";
    if (rounding * 20 > checked)
        out += "\n  too many points needed larger steps (over 5%): the layer's float error is too large";
    for (const auto& f : failures) out += "\n  " + f;
    return out;
}

std::vector<Shape> inputs_of(const CheckCase& c) {
    std::vector<Shape> out{c.input};
    out.insert(out.end(), c.more_inputs.begin(), c.more_inputs.end());
    return out;
}

std::string shapes_text(std::span<const Shape> shapes) {
    std::string out;
    for (std::size_t k = 0; k < shapes.size(); ++k)
        out += (k == 0 ? "" : k + 1 == shapes.size() ? " and " : ", ") + shapes[k].str();
    return out;
}

GradientCheckResult check_layer(Layer& layer, const std::vector<Shape>& inputs, uint64_t seed, bool training,
                                const GradientCheckOptions& o) {
    GradientCheckResult r;
    const Random rng = Random(seed).derive("gradient_check");
    const Shape output = layer.build_merge(inputs, rng.derive("init"));
    // Away from the initial values, which can hide a mistake (a gain of 1 that backward
    // forgets): each parameter moved by noise of half its RMS, and at least 0.1.
    auto parameters = layer.parameters();
    for (std::size_t i = 0; i < parameters.size(); ++i) {
        Matrix& v = parameters[i].value;
        const double rms = v.size() ? std::sqrt(v.cast<double>().squaredNorm() / double(v.size())) : 0.0;
        const Matrix noise = normal_matrix(v.rows(), v.cols(), rng.derive("perturb").derive(i));
        v += noise * float(0.5 * rms + 0.1);
    }
    const int64_t n = o.rows;
    // Input 1 is drawn as a single-input layer's was, so their checks did not move.
    std::vector<Matrix> x, dx;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        const Random stream = k == 0 ? rng.derive("x") : rng.derive("x").derive(k);
        const int64_t indices = k == 0 ? o.indices : 0;
        x.push_back(check_input(n, inputs[k].size(), stream, indices));
        dx.emplace_back(indices > 0 ? 0 : n, inputs[k].size());   // ids have no gradient
    }
    const Matrix w = normal_matrix(n, output.size(), rng.derive("w"));
    Matrix y(n, output.size());
    auto ws = layer.make_workspace(n);
    const StepContext ctx{training, rng.derive("step"), 0};
    std::vector<Matrix> grads;
    for (const auto& p : layer.parameters()) grads.emplace_back(p.value.rows(), p.value.cols());

    std::vector<ConstMatrixRef> xs(x.begin(), x.end());
    std::vector<MatrixRef> dxs(dx.begin(), dx.end());
    layer.forward_merge(xs, y, ws.get(), ctx);
    layer.backward_merge(xs, y, w, dxs, grads, ws.get(), ctx);

    auto objective = [&] {
        layer.forward_merge(xs, y, ws.get(), ctx);
        return weighted_sum(y, w);
    };
    Checker check(r, o, rng.derive("pick"));
    for (std::size_t k = o.indices > 0 ? 1 : 0; k < x.size(); ++k)
        check.tensor(x.size() == 1 ? "x" : "x" + std::to_string(k + 1), x[k].data(), x[k].size(), dx[k], objective);
    for (std::size_t i = 0; i < parameters.size(); ++i)
        check.tensor(parameters[i].name, parameters[i].value.data(), parameters[i].value.size(), grads[i], objective);
    return r;
}

GradientCheckResult check_network(const Network& network, uint64_t seed, const GradientCheckOptions& o) {
    GradientCheckResult r;
    const Random rng = Random(seed).derive("gradient_check");
    const int64_t n = o.rows;
    const Matrix x = normal_matrix(n, network.input().size(), rng.derive("x"));
    const Matrix w = normal_matrix(n, network.output().size(), rng.derive("w"));
    const StepContext ctx{true, rng.derive("step"), 0};
    ShardPass pass(network, n);
    pass.forward(x, n, ctx);
    pass.output_gradient(n) = w;
    pass.backward(x, n, ctx);
    auto objective = [&] {
        pass.forward(x, n, ctx);
        return weighted_sum(pass.output(n), w);
    };
    Checker check(r, o, rng.derive("pick"));
    const auto parameters = network.parameters();   // node by node, tensor by tensor: the grads' order
    // Frozen nodes' gradients are never computed: their parameters are not checked.
    std::size_t index = 0;
    for (std::size_t node = 0; node < pass.grads().size(); ++node)
        for (const Matrix& grad : pass.grads()[node]) {
            const auto& p = parameters[index++];
            if (network.layers()[node].trainable) check.tensor(p.name, p.value->data(), p.value->size(), grad, objective);
        }
    return r;
}

GradientCheckResult check_loss(const Loss& loss, const Shape& pred, const TargetInfo& targets, uint64_t seed,
                               const GradientCheckOptions& o) {
    GradientCheckResult r;
    const Random rng = Random(seed).derive("gradient_check");
    const int64_t n = o.rows;
    Matrix p = normal_matrix(n, pred.size(), rng.derive("pred"));
    Matrix t(n, targets.columns);
    for (int64_t i = 0; i < t.size(); ++i) {
        t.data()[i] = targets.classes > 0 ? float(rng.derive("label").below(uint64_t(i), uint64_t(targets.classes)))
                                          : rng.derive("target").uniform(uint64_t(i));
    }
    Matrix dp(n, pred.size());
    loss.evaluate(p, t, dp, 1.0f);
    Matrix none(0, pred.size());
    Checker check(r, o, rng.derive("pick"));
    check.tensor("pred", p.data(), p.size(), dp, [&] { return loss.evaluate(p, t, none, 1.0f); });
    return r;
}

std::string rows_problem(const Loss& loss, const Shape& pred, const TargetInfo& targets, uint64_t seed) {
    const Random rng = Random(seed).derive("rows_check");
    const int64_t n = 4;
    const Matrix p = normal_matrix(n, pred.size(), rng.derive("pred"));
    Matrix t(n, targets.columns);
    for (int64_t i = 0; i < t.size(); ++i)
        t.data()[i] = targets.classes > 0 ? float(rng.derive("label").below(uint64_t(i), uint64_t(targets.classes)))
                                          : rng.derive("target").uniform(uint64_t(i));
    Matrix all(n, pred.size()), one(1, pred.size());
    const double together = loss.evaluate(p, t, all, 0.5f);
    std::vector<Matrix> alone;
    double summed = 0;
    for (int64_t r = 0; r < n; ++r) {
        summed += loss.evaluate(p.row(r), t.row(r), one, 0.5f);
        alone.push_back(one);
    }
    char buf[200];
    if (std::abs(together - summed) > 1e-5 * (1.0 + std::abs(summed))) {
        std::snprintf(buf, sizeof buf, "%lld rows give a loss of %.6g, the sum of their single-row losses is %.6g",
                      static_cast<long long>(n), together, summed);
        return std::string(buf) + ": evaluate must return the sum over rows (the core divides by the batch size, "
                                  "so a mean would depend on how the batch is cut into shards)";
    }
    for (int64_t r = 0; r < n; ++r) {
        const double gap = (all.row(r) - alone[r]).cwiseAbs().maxCoeff();
        if (gap > 1e-5 * (1.0 + alone[r].cwiseAbs().maxCoeff())) {
            std::snprintf(buf, sizeof buf, "row %lld's gradient differs by %.3g alone and among %lld rows",
                          static_cast<long long>(r), gap, static_cast<long long>(n));
            return std::string(buf) + ": a row's gradient must depend on that row alone";
        }
    }
    return "";
}

std::vector<Params> parameter_variants(const Schema& schema, const Registry& registry) {
    const Params defaults = Params::defaults(schema);
    std::vector<Params> out{defaults};
    for (const auto& spec : schema.specs()) {
        std::vector<Value> others;
        if (spec.type == ParamType::boolean) others.push_back(!std::get<bool>(spec.default_value));
        if (spec.type == ParamType::choice)
            for (const auto& c : spec.choices) others.push_back(c);
        if (spec.type == ParamType::activation)
            for (const auto& a : registry.names(Kind::activation)) others.push_back(a);
        for (const auto& v : others) {
            if (v == spec.default_value) continue;
            Params p = defaults;
            p.set(spec.name, v);
            out.push_back(std::move(p));
        }
    }
    return out;
}

std::string describe(const Params& p) {
    std::string out = "{";
    for (const auto& [k, v] : p.values()) out += (out.size() > 1 ? ", " : "") + k + ": " + format_value(v);
    return out + "}";
}

}  // namespace bp
