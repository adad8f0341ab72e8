// Sequence models: the text dataset, per-position layers and loss, token embeddings,
// and a small character model trained end to end.
#include "helpers.hpp"
#include "model/experiment.hpp"
#include "tools/gradient_check.hpp"

namespace fs = std::filesystem;

namespace {

bp::Data load_text(const fs::path& path, int64_t context, int64_t stride, double validation) {
    auto& registry = test::builtin_registry();
    bp::Params p = bp::Params::defaults(registry.get(bp::Kind::dataset, "text").info->schema);
    p.set("path", path.string());
    p.set("context", context);
    p.set("stride", stride);
    p.set("validation", validation);
    return registry.create<bp::Dataset>("text", p)->load({1, path.parent_path().string()});
}

std::string row_text(const bp::Matrix& m, Eigen::Index r) {
    std::string s;
    for (Eigen::Index c = 0; c < m.cols(); ++c) s += char(int(m(r, c)));
    return s;
}

}  // namespace

TEST_CASE("text cuts each file's end off for validation and windows the rest", "[sequence]") {
    const auto dir = test::temp_dir("text");
    test::write_file(dir / "a", "abcdefghij");    // 10 bytes: 8 train, 2 held out
    test::write_file(dir / "b", "0123456789");
    test::write_file(dir / "binary", std::string("xy\0z", 4));   // skipped: holds a 0 byte
    fs::create_symlink(dir / "a", dir / "a.link");                 // skipped: read once, as a
    const bp::Data d = load_text(dir, 3, 2, 0.2);
    CHECK(d.input == bp::Shape{3});
    CHECK(d.target.columns == 3);
    CHECK(d.target.classes == 256);
    // training text "abcdefgh01234567", windows at 0, 2, ... with their next bytes
    REQUIRE(d.train.x.rows() == 7);
    CHECK(row_text(d.train.x, 0) == "abc");
    CHECK(row_text(d.train.y, 0) == "bcd");
    CHECK(row_text(d.train.x, 3) == "gh0");
    CHECK(row_text(d.train.y, 6) == "567");
    REQUIRE(d.validation);
    REQUIRE(d.validation->x.rows() == 1);   // "ij89"
    CHECK(row_text(d.validation->x, 0) == "ij8");
    CHECK(row_text(d.validation->y, 0) == "j89");
    CHECK_FALSE(d.test);

    // stride 0: windows do not overlap
    CHECK(load_text(dir / "a", 4, 0, 0).train.x.rows() == 2);
    CHECK_FALSE(load_text(dir / "a", 4, 0, 0).validation);
}

TEST_CASE("text says what is missing", "[sequence]") {
    const auto dir = test::temp_dir("text-errors");
    CHECK(test::error_of([&] { load_text(dir / "nothing", 4, 0, 0.1); }) ==
          "text: " + (dir / "nothing").string() + " does not exist, or set data.path to a text file or a folder of them");
    test::write_file(dir / "short", "abcd");
    CHECK(test::error_of([&] { load_text(dir / "short", 4, 0, 0); }) ==
          "text: the training text of " + (dir / "short").string() +
              " is 4 bytes; a window of context 4 needs 5 (a smaller context or validation, or more text)");
    fs::create_directories(dir / "empty");
    CHECK(test::error_of([&] { load_text(dir / "empty", 4, 0, 0); }) ==
          "text: " + (dir / "empty").string() + " holds no text file");
}

TEST_CASE("softmax cross entropy scores every position of a sequence", "[sequence]") {
    auto& registry = test::builtin_registry();
    const auto loss = registry.create<bp::Loss>("softmax_cross_entropy", {});
    const bp::TargetInfo targets{3, 4};   // 3 positions, 4 classes
    CHECK_NOTHROW(loss->check(bp::Shape{3, 4}, targets));
    CHECK(test::error_of([&] { loss->check(bp::Shape{12}, targets); }) ==
          "softmax_cross_entropy needs one logit per class at each of the 3 positions: the model must output "
          "[3, 4], got [12]");
    bp::Matrix pred(2, 12), target(2, 3), d(2, 12), one_d(1, 4);
    for (Eigen::Index i = 0; i < pred.size(); ++i) pred.data()[i] = float(i % 5) * 0.3f - float(i % 3);
    target << 0, 3, 1, 2, 2, 0;
    const double total = loss->evaluate(pred, target, d, 0.5f);
    // the mean over positions of each position scored alone, and its gradient divided by the positions
    double expected = 0;
    for (Eigen::Index r = 0; r < 2; ++r)
        for (Eigen::Index t = 0; t < 3; ++t) {
            const bp::Matrix z = pred.row(r).segment(t * 4, 4);
            const bp::Matrix label = target.block(r, t, 1, 1);
            expected += loss->evaluate(z, label, one_d, 0.5f) / 3;
            CHECK(d.row(r).segment(t * 4, 4).isApprox(one_d / 3, 1e-6f));
        }
    CHECK(total == Approx(expected).epsilon(1e-12));
    // accuracy counts positions: the argmaxes 3, 2, 1 / 0, 2, 1 against 0, 3, 1 / 2, 2, 0
    CHECK(loss->count_correct(pred, target) == 2);
    const auto g = bp::check_loss(*loss, bp::Shape{3, 4}, targets, 1);
    CHECK(g.passed());
}

TEST_CASE("dense acts on each position of a sequence alike", "[sequence]") {
    const auto seq = test::make_layer("dense", {{"units", int64_t(5)}});
    const auto one = test::make_layer("dense", {{"units", int64_t(5)}});
    const bp::Random init(3);
    CHECK(seq->build(bp::Shape{4, 3}, init) == bp::Shape{4, 5});
    CHECK(one->build(bp::Shape{3}, init) == bp::Shape{5});   // the same weights
    const bp::Matrix x = bp::check_input(2, 12, bp::Random(4));
    bp::Matrix y(2, 20), y1(1, 5);
    seq->forward(x, y, nullptr, {});
    for (Eigen::Index r = 0; r < 2; ++r)
        for (Eigen::Index t = 0; t < 4; ++t) {
            one->forward(x.block(r, t * 3, 1, 3), y1, nullptr, {});
            CHECK(y.block(r, t * 5, 1, 5).isApprox(y1, 1e-6f));
        }
}

TEST_CASE("an embedding looks its ids up and refuses what is not one", "[sequence]") {
    const auto emb = test::make_layer("embedding", {{"vocabulary", int64_t(5)}, {"dimension", int64_t(2)}});
    CHECK(emb->build(bp::Shape{3}, bp::Random(1)) == bp::Shape{3, 2});
    const bp::Matrix& w = emb->parameters()[0].value;
    CHECK(emb->parameters()[0].role == bp::ParameterRole::embedding);
    bp::Matrix x(1, 3), y(1, 6), dy(1, 6), dx(0, 3);
    x << 4, 0, 4;
    emb->forward(x, y, nullptr, {});
    CHECK(y.block(0, 0, 1, 2) == w.row(4));
    CHECK(y.block(0, 2, 1, 2) == w.row(0));
    dy << 1, 2, 3, 4, 5, 6;
    std::vector<bp::Matrix> grads{bp::Matrix(5, 2)};
    emb->backward(x, y, dy, dx, grads, nullptr, {});
    bp::Matrix want = bp::Matrix::Zero(5, 2);
    want << 3, 4, 0, 0, 0, 0, 0, 0, 6, 8;
    CHECK(grads[0] == want);
    x << 1, 5, 0;
    CHECK(test::error_of([&] { emb->forward(x, y, nullptr, {}); }) ==
          "embedding: the input at position 1 is 5.000000, not a token id 0..4 (set vocabulary, or put the embedding "
          "first, on the data's ids)");
    CHECK(test::error_of([&] { emb->build(bp::Shape{3, 2}, bp::Random(1)); }) ==
          "embedding needs token ids [T], one per position, got [3, 2] (it comes first: the data's samples are the ids)");
}

TEST_CASE("a character model trains on text, the same bits at any thread count", "[sequence]") {
    const auto dir = test::temp_dir("char-model");
    std::string text;
    for (int i = 0; i < 60; ++i) text += "the cat sat on the mat. a dog ate a log. ";
    test::write_file(dir / "corpus.txt", text);
    const std::string yaml = R"(name: chars
seed: 3
data: { source: text, path: corpus.txt, context: 16 }
model:
  - embedding: { vocabulary: 256, dimension: 16 }
  - positional_embedding
  - layer_norm
  - dense: { units: 32, activation: relu }
  - dense: { units: 256 }
loss: softmax_cross_entropy
optimizer: { name: adam, lr: 0.01 }
train: { epochs: 4, batch_size: 16, shard_size: 4, best_metric: val_loss }
)";
    test::write_file(dir / "chars.yaml", yaml);
    auto& registry = test::builtin_registry();
    auto run = [&](int threads) {
        const auto e = bp::load_experiment(dir / "chars.yaml", {"train.threads=" + std::to_string(threads)}, registry);
        return test::run_quietly(e, dir / ("run-" + std::to_string(threads)));
    };
    const auto one = run(1), two = run(2);
    REQUIRE(one.history.size() == 4);
    // A model seeing one position at a time learns which byte follows which: far below
    // the 8 bits (5.55 nats) of a uniform guess over 256 bytes.
    CHECK(one.history.back().validation.loss < 2.0);
    CHECK(one.history.back().validation.accuracy > 0.3);
    CHECK(one.history.back().train.loss < one.history.front().train.loss);
    CHECK(two.fingerprint == one.fingerprint);
    CHECK(two.history.back().validation.loss == one.history.back().validation.loss);

    const auto split = bp::load_experiment(dir / "chars.yaml", {"data.validation_split=0.1"}, registry);
    CHECK(test::error_of([&] { test::run_quietly(split, dir / "run-split"); }) ==
          (dir / "chars.yaml").string() + ":3:7: dataset 'text' holds out its own validation set; remove "
                                          "data.validation_split");
}

TEST_CASE("the text dataset's default corpus is Debian's fortunes", "[sequence]") {
    // scripts/setup.sh installs the package: 2.6 MB of English in 43 files.
    auto& registry = test::builtin_registry();
    const bp::Params p = bp::Params::defaults(registry.get(bp::Kind::dataset, "text").info->schema);
    const bp::Data d = registry.create<bp::Dataset>("text", p)->load({1, ""});
    CHECK(d.input == bp::Shape{64});
    CHECK(d.train.x.rows() > 30000);
    REQUIRE(d.validation);
    CHECK(d.validation->x.rows() > 3000);
    CHECK(d.validation->x.rows() < d.train.x.rows() / 8);
}

TEST_CASE("attention over one position passes its values through both projections", "[sequence]") {
    // softmax over a single score is 1: y = (x W_q|k|v + b) restricted to V, then W_out + b_out.
    const auto att = test::make_layer("multi_head_attention", {{"heads", int64_t(2)}});
    REQUIRE(att->build(bp::Shape{1, 4}, bp::Random(5)) == bp::Shape{1, 4});
    auto p = att->parameters();
    for (auto& t : p) t.value.setRandom();   // biases off zero too
    const bp::Matrix x = bp::check_input(3, 4, bp::Random(6));
    bp::Matrix y(3, 4);
    auto ws = att->make_workspace(3);
    att->forward(x, y, ws.get(), bp::StepContext{false});
    const bp::Matrix v = (x * p[0].value).rightCols(4).rowwise() + p[2].value.rightCols(4).row(0);
    const bp::Matrix want = (v * p[1].value).rowwise() + p[3].value.row(0);
    CHECK(y.isApprox(want, 1e-5f));
}

TEST_CASE("causal attention never lets a position see the ones after it", "[sequence]") {
    const auto att = test::make_layer("multi_head_attention", {{"heads", int64_t(2)}});
    REQUIRE(att->build(bp::Shape{5, 4}, bp::Random(7)) == bp::Shape{5, 4});
    bp::Matrix x = bp::check_input(2, 20, bp::Random(8));
    bp::Matrix before(2, 20), after(2, 20);
    auto ws = att->make_workspace(2);
    att->forward(x, before, ws.get(), bp::StepContext{false});
    x.rightCols(8).array() += 1.0f;   // positions 3 and 4 change
    att->forward(x, after, ws.get(), bp::StepContext{false});
    CHECK(after.leftCols(12) == before.leftCols(12));                  // positions 0-2: the same bits
    CHECK((after.rightCols(8) - before.rightCols(8)).norm() > 0.1f);

    const auto open = test::make_layer("multi_head_attention", {{"heads", int64_t(2)}, {"causal", false}});
    REQUIRE(open->build(bp::Shape{5, 4}, bp::Random(7)) == bp::Shape{5, 4});
    auto ws2 = open->make_workspace(2);
    open->forward(x, after, ws2.get(), bp::StepContext{false});
    x.rightCols(8).array() -= 1.0f;
    open->forward(x, before, ws2.get(), bp::StepContext{false});
    CHECK((after.leftCols(4) - before.leftCols(4)).norm() > 1e-3f);    // without the mask, position 0 sees them
}

TEST_CASE("sinusoidal positions are Vaswani's table", "[sequence]") {
    const auto pos = test::make_layer("positional_embedding", {{"kind", std::string("sinusoidal")}});
    REQUIRE(pos->build(bp::Shape{3, 4}, bp::Random(1)) == bp::Shape{3, 4});
    CHECK(pos->parameters().empty());
    const bp::Matrix x = bp::Matrix::Zero(1, 12);
    bp::Matrix y(1, 12);
    pos->forward(x, y, nullptr, {});
    // position 2: sin(2), cos(2), sin(2 / 100), cos(2 / 100) (10000^(2/4) = 100)
    CHECK(y(0, 8) == Approx(std::sin(2.0)));
    CHECK(y(0, 9) == Approx(std::cos(2.0)));
    CHECK(y(0, 10) == Approx(std::sin(0.02)));
    CHECK(y(0, 11) == Approx(std::cos(0.02)));
    CHECK(y(0, 0) == 0.0f);
    CHECK(y(0, 1) == 1.0f);
}

TEST_CASE("a softmax on a sequence normalises each position, and mse refuses a class per position", "[sequence]") {
    auto& registry = test::builtin_registry();
    const auto softmax = bp::make_layer(bp::ComponentConfig{bp::Kind::activation, "softmax", {}, "test"}, registry);
    REQUIRE(softmax->build(bp::Shape{2, 3}, bp::Random(1)) == bp::Shape{2, 3});
    bp::Matrix x(1, 6), y(1, 6);
    x << 1, 2, 3, 0, 0, 0;
    softmax->forward(x, y, nullptr, {});
    CHECK(y.leftCols(3).sum() == Approx(1.0));
    CHECK(y.rightCols(3).sum() == Approx(1.0));
    CHECK(y(0, 3) == Approx(1.0 / 3));
    const auto mse = registry.create<bp::Loss>("mse", {});
    CHECK(test::error_of([&] { mse->check(bp::Shape{1}, bp::TargetInfo{64, 256}); }) ==
          "mse regresses numbers; these targets are a class at each of 64 positions: use softmax_cross_entropy");
}
