#include "train/generate.hpp"

#include "train/run.hpp"
#include "train/shard_pass.hpp"

#include <algorithm>
#include <cmath>

namespace bp {

namespace {

// The model's [T] -> [T, V] shape, or an error saying what generation needs.
void check_language_model(const TrainedModel& m) {
    const Network& net = *m.run.network;
    const Shape& in = net.input();
    const Shape& out = net.output();
    const TargetInfo& target = m.run.data.target;
    if (in.rank() != 1 || out.rank() != 2 || out.dims[0] != in.dims[0] || target.classes != out.dims[1] ||
        target.columns != in.dims[0])
        throw Error(m.file.string() + ": generate needs a language model: token ids [T] in and a score for every "
                    "token at every position [T, V] out, trained on next-token targets (the text dataset); this "
                    "model maps " + in.str() + " to " + out.str());
    if (out.dims[1] > 256)
        throw Error(m.file.string() + ": generate reads token ids as bytes, and this model has " +
                    std::to_string(out.dims[1]) + " tokens");
}

// The window holding the last k = min(T, size) bytes of `text` at positions 0..k-1, the
// rest `pad`; returns k.
int64_t fill_window(Matrix& x, const std::string& text, float pad) {
    const int64_t T = x.cols(), k = std::min<int64_t>(T, int64_t(text.size()));
    x.setConstant(pad);
    for (int64_t j = 0; j < k; ++j) x(0, j) = float(static_cast<unsigned char>(text[text.size() - k + j]));
    return k;
}

// Refuses a model whose prediction at a position changes with the positions after it
// (attention with causal: false): generation reads position k-1 of a window filled up
// to k. Checked with the prompt's first bytes, ids 0 and 1 after them (valid for any
// vocabulary).
void check_causal(ShardPass& pass, Matrix& x, const std::string& prompt, const TrainedModel& m, int64_t V) {
    const int64_t T = x.cols();
    if (T == 1) return;
    const std::string head = prompt.substr(0, std::size_t(T - 1));
    const StepContext eval{false};
    const int64_t k = fill_window(x, head, 0.0f);
    pass.forward(x, 1, eval);
    const Eigen::RowVectorXf zeros = pass.output(1).row(0).segment((k - 1) * V, V);
    fill_window(x, head, 1.0f);
    pass.forward(x, 1, eval);
    if (pass.output(1).row(0).segment((k - 1) * V, V) != zeros)
        throw Error(m.file.string() + ": the model's output at a position depends on later positions "
                    "(attention with causal: false?), so it cannot predict the next byte from a prompt");
}

// The index drawn from softmax(logits / temperature) with uniform u, or the argmax at 0.
int64_t sample(Eigen::Ref<const Eigen::RowVectorXf> logits, double temperature, double u) {
    Eigen::Index best = 0;
    const double top = logits.maxCoeff(&best);
    if (temperature == 0) return best;
    Eigen::RowVectorXd p = ((logits.cast<double>().array() - top) / temperature).exp();
    p /= p.sum();
    double cumulative = 0;
    for (Eigen::Index i = 0; i < p.size(); ++i) {
        cumulative += p(i);
        if (u < cumulative) return i;
    }
    return p.size() - 1;   // u just below 1 past the rounding of the sum
}

}  // namespace

void generate(const std::filesystem::path& run_or_file, const GenerateOptions& opts, Registry& registry,
              const std::function<void(std::string_view)>& emit) {
    if (opts.tokens < 0) throw Error("--tokens must be 0 or more");
    if (!(opts.temperature >= 0) || !std::isfinite(opts.temperature))
        throw Error("--temperature must be 0 (the most likely byte) or more");
    if (opts.prompt.empty()) throw Error("--prompt is empty: give at least one byte to continue");
    const TrainedModel m = load_trained(run_or_file, opts.overrides, registry);
    check_language_model(m);
    const int64_t T = m.run.network->input().dims[0], V = m.run.network->output().dims[1];
    for (const char c : opts.prompt)
        if (int64_t(static_cast<unsigned char>(c)) >= V)
            throw Error("--prompt has a byte (" + std::to_string(int(static_cast<unsigned char>(c))) +
                        ") outside the model's " + std::to_string(V) + " tokens");

    ShardPass pass(*m.run.network, 1);
    Matrix x(1, T);
    check_causal(pass, x, opts.prompt, m, V);
    emit(opts.prompt);
    std::string text = opts.prompt;
    const Random draws = Random(opts.seed).derive("generate");
    for (int64_t i = 0; i < opts.tokens; ++i) {
        const int64_t k = fill_window(x, text, 0.0f);
        pass.forward(x, 1, StepContext{false});
        const Eigen::RowVectorXf logits = pass.output(1).row(0).segment((k - 1) * V, V);
        const char next = char(sample(logits, opts.temperature, double(draws.uniform(uint64_t(i)))));
        text += next;
        emit(std::string_view(&next, 1));
    }
}

}  // namespace bp
