// lstm and gru: their forward against a plain per-sample, per-step reference in double,
// what they start from, that they learn what a memoryless model cannot, and generation
// from a model trained on text. The gradient
// check (every registered layer, sequences of 48 steps among its cases) covers backward.
#include "helpers.hpp"
#include "model/experiment.hpp"
#include "tools/gradient_check.hpp"
#include "train/generate.hpp"

#include <cmath>
#include <regex>

namespace {

using Vec = Eigen::VectorXd;

double sig(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// One layer with random parameters (biases too), and its output for a random batch.
struct Case {
    std::shared_ptr<bp::Layer> layer;
    bp::Matrix x, y;
    int64_t T, C, H;
};

Case run_case(const std::string& kind, bool sequences, int64_t n = 3, int64_t T = 6, int64_t C = 3, int64_t H = 4) {
    Case c{test::make_layer(kind, {{"units", H}, {"return_sequences", sequences}}), {}, {}, T, C, H};
    const bp::Shape out = c.layer->build(bp::Shape{T, C}, bp::Random(11));
    REQUIRE(out == (sequences ? bp::Shape{T, H} : bp::Shape{H}));
    const bp::Random r(12);
    for (std::size_t k = 0; k < c.layer->parameters().size(); ++k) {
        bp::Matrix& p = c.layer->parameters()[k].value;
        p = bp::check_input(p.rows(), p.cols(), r.derive(k)) * 0.5f;
    }
    c.x = bp::check_input(n, T * C, bp::Random(13));
    c.y.resize(n, out.size());
    auto ws = c.layer->make_workspace(n);
    c.layer->forward(c.x, c.y, ws.get(), bp::StepContext{false});
    // A shard smaller than its workspace (a batch's last) computes the same bits.
    bp::Matrix roomy(n, out.size());
    auto big = c.layer->make_workspace(n + 3);
    c.layer->forward(c.x, roomy, big.get(), bp::StepContext{false});
    CHECK(roomy == c.y);
    return c;
}

Eigen::MatrixXd param(const Case& c, std::size_t k) { return c.layer->parameters()[k].value.cast<double>(); }

Vec input_at(const Case& c, Eigen::Index r, Eigen::Index t) {
    return c.x.row(r).segment(t * c.C, c.C).transpose().cast<double>();
}

// The states h_0 .. h_{T-1} of sample r, one column each, by the equations in lstm.cpp.
Eigen::MatrixXd lstm_reference(const Case& c, Eigen::Index r) {
    const Eigen::MatrixXd wx = param(c, 0), wh = param(c, 1);
    const Vec b = param(c, 2).row(0).transpose();
    const Eigen::Index H = c.H;
    Vec h = Vec::Zero(H), cell = Vec::Zero(H);
    Eigen::MatrixXd states(H, c.T);
    for (Eigen::Index t = 0; t < c.T; ++t) {
        const Vec a = wx.transpose() * input_at(c, r, t) + wh.transpose() * h + b;
        for (Eigen::Index j = 0; j < H; ++j) {
            const double i = sig(a(j)), f = sig(a(H + j)), g = std::tanh(a(2 * H + j)), o = sig(a(3 * H + j));
            cell(j) = f * cell(j) + i * g;
            h(j) = o * std::tanh(cell(j));
        }
        states.col(t) = h;
    }
    return states;
}

// The same for gru.cpp's equations.
Eigen::MatrixXd gru_reference(const Case& c, Eigen::Index r) {
    const Eigen::MatrixXd wx = param(c, 0), wh = param(c, 1);
    const Vec b = param(c, 2).row(0).transpose(), bh = param(c, 3).row(0).transpose();
    const Eigen::Index H = c.H;
    Vec h = Vec::Zero(H);
    Eigen::MatrixXd states(H, c.T);
    for (Eigen::Index t = 0; t < c.T; ++t) {
        const Vec a = wx.transpose() * input_at(c, r, t) + b, u = wh.transpose() * h + bh;
        for (Eigen::Index j = 0; j < H; ++j) {
            const double rg = sig(a(j) + u(j)), z = sig(a(H + j) + u(H + j));
            const double m = std::tanh(a(2 * H + j) + rg * u(2 * H + j));
            h(j) = (1 - z) * m + z * h(j);
        }
        states.col(t) = h;
    }
    return states;
}

void check_against_reference(const std::string& kind) {
    const Case all = run_case(kind, true), last = run_case(kind, false);
    for (Eigen::Index r = 0; r < all.x.rows(); ++r) {
        const Eigen::MatrixXd want = kind == "lstm" ? lstm_reference(all, r) : gru_reference(all, r);
        for (Eigen::Index t = 0; t < all.T; ++t)
            for (Eigen::Index j = 0; j < all.H; ++j) CHECK(all.y(r, t * all.H + j) == Approx(want(j, t)).margin(1e-5));
        // the last state alone is the sequence's last position, bit for bit
        CHECK(last.y.row(r) == all.y.row(r).tail(all.H));
    }
}

}  // namespace

TEST_CASE("lstm computes the gated recurrence step by step", "[sequence][recurrent]") {
    check_against_reference("lstm");
}

TEST_CASE("gru computes the gated recurrence step by step", "[sequence][recurrent]") {
    check_against_reference("gru");
}

TEST_CASE("a recurrent layer's output at a position never depends on later positions", "[sequence][recurrent]") {
    for (const std::string kind : {"lstm", "gru"}) {
        Case c = run_case(kind, true);
        const bp::Matrix before = c.y;
        c.x.rightCols(2 * c.C).array() += 1.0f;   // positions 4 and 5
        auto ws = c.layer->make_workspace(c.x.rows());
        c.layer->forward(c.x, c.y, ws.get(), bp::StepContext{false});
        CHECK(c.y.leftCols(4 * c.H) == before.leftCols(4 * c.H));
        CHECK((c.y.rightCols(2 * c.H) - before.rightCols(2 * c.H)).norm() > 1e-2f);
    }
}

TEST_CASE("recurrent layers start with orthogonal recurrent weights, an lstm with its forget gate open",
          "[sequence][recurrent]") {
    const auto lstm = test::make_layer("lstm", {{"units", int64_t(8)}});
    lstm->build(bp::Shape{5, 3}, bp::Random(1));
    const auto p = lstm->parameters();
    REQUIRE(p.size() == 3);
    CHECK(p[0].name == "input_weight");
    CHECK(p[1].name == "recurrent_weight");
    for (int g = 0; g < 4; ++g) {
        const bp::Matrix w = p[1].value.middleCols(g * 8, 8);
        CHECK((w.transpose() * w - bp::Matrix::Identity(8, 8)).norm() < 1e-5f);
    }
    CHECK(p[2].value.middleCols(8, 8) == bp::Matrix::Ones(1, 8));   // forget gate
    CHECK(p[2].value.leftCols(8).isZero());
    CHECK(p[2].value.rightCols(16).isZero());

    const auto gru = test::make_layer("gru", {{"units", int64_t(8)}});
    gru->build(bp::Shape{5, 3}, bp::Random(1));
    REQUIRE(gru->parameters().size() == 4);
    CHECK(gru->parameters()[3].name == "recurrent_bias");
    CHECK(gru->parameters()[2].value.isZero());

    CHECK(test::error_of([] { test::make_layer("gru")->build(bp::Shape{12}, bp::Random(1)); }) ==
          "gru needs a sequence [T, C], got [12] (an embedding makes one from token ids)");
}

namespace {

// Lines "D....D\n": a random digit, four dots, the same digit again. Seeing one byte at a
// time, the closing digit and the newline are guesses (about 1.2 nats per byte at best);
// with memory only the opening digit is (about 0.33).
std::filesystem::path write_memory_task(const std::filesystem::path& dir, const std::string& layer) {
    std::string text;
    uint32_t state = 7;
    for (int i = 0; i < 400; ++i) {
        state = state * 1664525u + 1013904223u;
        const char d = char('0' + (state >> 16) % 10);
        text += std::string(1, d) + "...." + std::string(1, d) + "\n";
    }
    test::write_file(dir / "lines.txt", text);
    return test::write_file(dir / (layer + ".yaml"), R"(name: memory
seed: 2
data: { source: text, path: lines.txt, context: 14, stride: 7 }
model:
  - embedding: { vocabulary: 256, dimension: 8 }
  - )" + layer + R"(: { units: 24 }
  - dense: { units: 256 }
loss: softmax_cross_entropy
optimizer: { name: adam, lr: 0.02 }
train: { epochs: 30, batch_size: 16, shard_size: 4 }
)");
}

bp::RunResult train(const std::filesystem::path& file, const std::filesystem::path& out, int threads = 1) {
    const auto e = bp::load_experiment(file, {"train.threads=" + std::to_string(threads)}, test::builtin_registry());
    return test::run_quietly(e, out);
}

std::string generate(const std::filesystem::path& run, const bp::GenerateOptions& o) {
    std::string text;
    bp::generate(run, o, test::builtin_registry(), [&](std::string_view s) { text += s; });
    return text;
}

}  // namespace

TEST_CASE("a recurrent language model remembers what a memoryless one cannot", "[sequence][recurrent]") {
    const auto dir = test::temp_dir("recurrent-memory");
    for (const std::string kind : {"lstm", "gru", "dense"}) {
        const auto file = write_memory_task(dir, kind);
        const auto one = train(file, dir / (kind + "1"), 1), two = train(file, dir / (kind + "2"), 2);
        INFO(kind);
        CAPTURE(one.history.back().validation.loss);
        if (kind == "dense")
            CHECK(one.history.back().validation.loss > 1.0);   // the same model without memory
        else
            CHECK(one.history.back().validation.loss < 0.5);
        CHECK(two.fingerprint == one.fingerprint);
    }
}

TEST_CASE("generate continues a prompt with what the model learned, the same text for a seed",
          "[sequence][recurrent]") {
    const auto dir = test::temp_dir("generate");
    const auto run = train(write_memory_task(dir, "lstm"), dir / "run").dir;
    bp::GenerateOptions o;
    o.temperature = 0;   // the most likely byte: the digit that opened the line, then the line's end
    o.prompt = "7....";
    o.tokens = 2;
    CHECK(generate(run, o) == "7....7\n");
    o.prompt = "\n3....3\n5..";
    o.tokens = 4;
    CHECK(generate(run, o) == "\n3....3\n5....5\n");

    o.temperature = 0.5;
    o.prompt = "\n";
    o.tokens = 70;   // past the 14-byte context: the window slides
    const std::string a = generate(run, o);
    CHECK(a == generate(run, o));
    o.seed = 2;
    CHECK(a != generate(run, o));
    // Most lines the model writes have the shape it learned (sampling may pick a rare byte).
    CAPTURE(a);
    int lines = 0, learned = 0;
    for (std::size_t start = 1, end; (end = a.find('\n', start)) != std::string::npos; start = end + 1, ++lines)
        learned += std::regex_match(a.substr(start, end - start), std::regex("([0-9])\\.\\.\\.\\.\\1"));
    CHECK(lines >= 9);
    CHECK(learned >= lines * 4 / 5);
}

TEST_CASE("generate refuses a model that is not a causal language model", "[sequence][recurrent]") {
    const auto dir = test::temp_dir("generate-errors");
    const auto memory = write_memory_task(dir, "lstm");
    bp::GenerateOptions o;
    o.tokens = 3;
    // bidirectional attention sees the positions after the one it predicts
    std::string yaml = test::read_file(memory);
    yaml.replace(yaml.find("lstm: { units: 24 }"), 19, "multi_head_attention: { heads: 2, causal: false }");
    test::write_file(dir / "open.yaml", yaml);
    const auto open = train(dir / "open.yaml", dir / "open", 1).dir;
    CHECK(test::error_of([&] { generate(open, o); }) ==
          (open / "checkpoints" / "last.safetensors").string() +
              ": the model's output at a position depends on later positions (attention with causal: false?), so "
              "it cannot predict the next byte from a prompt");
    // a classifier
    const auto xor_run = train(std::filesystem::path(BACKPLANE_EXPERIMENTS) / "xor.yaml", dir / "xor").dir;
    CHECK(test::error_of([&] { generate(xor_run, o); }) ==
          (xor_run / "checkpoints" / "last.safetensors").string() +
              ": generate needs a language model: token ids [T] in and a score for every token at every position "
              "[T, V] out, trained on next-token targets (the text dataset); this model maps [2] to [1]");
    o.prompt = "";
    CHECK(test::error_of([&] { generate(xor_run, o); }) == "--prompt is empty: give at least one byte to continue");
    // a prompt longer than the context, and nothing to sample: still refused, before any text
    o.prompt = std::string(20, '5');
    o.tokens = 0;
    std::string emitted;
    CHECK_THAT(test::error_of([&] {
                   bp::generate(open, o, test::builtin_registry(), [&](std::string_view s) { emitted += s; });
               }),
               Catch::EndsWith("so it cannot predict the next byte from a prompt"));
    CHECK(emitted.empty());
}
