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

    emit(opts.prompt);
    ShardPass pass(*m.run.network, 1);
    Matrix x = Matrix::Zero(1, T);
    std::string text = opts.prompt;
    const StepContext eval{false};
    const Random draws = Random(opts.seed).derive("generate");
    for (int64_t i = 0; i < opts.tokens; ++i) {
        const int64_t k = std::min<int64_t>(T, int64_t(text.size()));   // bytes of context
        x.setZero();
        for (int64_t j = 0; j < k; ++j) x(0, j) = float(static_cast<unsigned char>(text[text.size() - k + j]));
        pass.forward(x, 1, eval);
        const Eigen::RowVectorXf logits = pass.output(1).row(0).segment((k - 1) * V, V);
        if (i == 0 && k < T) {
            // Padding the unused positions otherwise must not change the prediction.
            x.rightCols(T - k).setConstant(float(V - 1));
            pass.forward(x, 1, eval);
            if (pass.output(1).row(0).segment((k - 1) * V, V) != logits)
                throw Error(m.file.string() + ": the model's output at a position depends on later positions "
                            "(attention with causal: false?), so it cannot predict the next byte from a prompt");
        }
        const char next = char(sample(logits, opts.temperature, double(draws.uniform(uint64_t(i)))));
        text += next;
        emit(std::string_view(&next, 1));
    }
}

}  // namespace bp
