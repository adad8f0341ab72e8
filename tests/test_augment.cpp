// data.augment: flips, shifted crops and erasing, drawn per sample from the
// counter-based generator, so runs stay bitwise reproducible.
#include "helpers.hpp"
#include "model/augment.hpp"
#include "model/experiment.hpp"
#include "train/run.hpp"
#include "train/trainer.hpp"

namespace {

// A 2x3x4 image whose every value says where it stands: 100 c + 10 y + x + 1.
bp::Matrix numbered() {
    bp::Matrix m(1, 24);
    for (int c = 0; c < 2; ++c)
        for (int y = 0; y < 3; ++y)
            for (int x = 0; x < 4; ++x) m(0, (c * 3 + y) * 4 + x) = float(100 * c + 10 * y + x + 1);
    return m;
}
const bp::Shape shape{2, 3, 4};
float at(const bp::Matrix& m, int c, int y, int x) { return m(0, (c * 3 + y) * 4 + x); }

// The first stream (by index) whose draws give `want` for a flip-only augmentation.
bp::Random stream_where_flip_is(bool want) {
    for (uint64_t i = 0;; ++i)
        if ((bp::Random(i).uniform(0) < 0.5f) == want) return bp::Random(i);
}

std::string experiment(const std::string& augment) {
    // Wide enough that a shard outlasts a worker's wake-up, so every thread takes part even
    // when other work shares the cores (without the dense 256 the 2-thread run once did all
    // its shards on one thread while a comparison ran beside the tests).
    return "name: aug\nseed: 5\ndata: { source: gaussian, shape: 2x12x12, samples: 480, classes: 3, validation_split: 0.25, "
           "augment: " + augment + " }\nmodel:\n  - conv2d: { filters: 24, kernel: 3, padding: 1 }\n  - batch_norm\n"
           "  - relu\n  - flatten\n  - dense: { units: 256, activation: relu }\n  - dense: { units: 3 }\n"
           "loss: softmax_cross_entropy\n"
           "optimizer: { name: adam, lr: 0.01 }\ntrain: { epochs: 3, batch_size: 40, shard_size: 8 }\n";
}

}  // namespace

TEST_CASE("a flip mirrors each row of each channel, and nothing else changes", "[augment]") {
    const bp::Matrix in = numbered();
    bp::Matrix out(1, 24);
    bp::augment(in, out, shape, {true, 0, 0}, stream_where_flip_is(true));
    for (int c = 0; c < 2; ++c)
        for (int y = 0; y < 3; ++y)
            for (int x = 0; x < 4; ++x) CHECK(at(out, c, y, x) == at(in, c, y, 3 - x));
    bp::augment(in, out, shape, {true, 0, 0}, stream_where_flip_is(false));
    CHECK(out == in);
}

TEST_CASE("a crop shifts the image within its padding and fills the rest with zeros", "[augment]") {
    const bp::Matrix in = numbered();
    bp::Matrix out(1, 24);
    int shifted = 0;
    for (uint64_t seed = 0; seed < 50; ++seed) {
        const bp::Random r(seed);
        bp::augment(in, out, shape, {false, 2, 0}, r);
        // Every output pixel is the input pixel at one fixed offset (dy, dx) in [-2, 2], or 0 off the image.
        const int dy = int(r.below(1, 5)) - 2, dx = int(r.below(2, 5)) - 2;
        for (int c = 0; c < 2; ++c)
            for (int y = 0; y < 3; ++y)
                for (int x = 0; x < 4; ++x) {
                    const int sy = y + dy, sx = x + dx;
                    const bool inside = sy >= 0 && sy < 3 && sx >= 0 && sx < 4;
                    CHECK(at(out, c, y, x) == (inside ? at(in, c, sy, sx) : 0.0f));
                }
        shifted += dy != 0 || dx != 0;
    }
    CHECK(shifted > 30);   // 24 of 25 offsets move the image
}

TEST_CASE("erasing zeroes one rectangle of 2-40% of the image, in every channel", "[augment]") {
    const bp::Shape big{2, 20, 20};
    const bp::Matrix in = bp::Matrix::Constant(1, big.size(), 1.0f);
    bp::Matrix out(1, big.size());
    int erased = 0;
    for (uint64_t seed = 0; seed < 200; ++seed) {
        bp::augment(in, out, big, {false, 0, 0.5}, bp::Random(seed));
        const auto zeros = (out.array() == 0).count();
        if (zeros == 0) continue;
        ++erased;
        CHECK(zeros % 2 == 0);   // the same rectangle in both channels
        CHECK(zeros / 2 <= 400 * 0.4 + 20);   // rounding to whole pixels adds at most a row or column
        CHECK(zeros / 2 >= 1);
        CHECK(out.leftCols(400) == out.rightCols(400));
    }
    CHECK(erased > 70);
    CHECK(erased < 130);
}

TEST_CASE("an augmented run is bitwise identical at 1, 2 and 8 threads, and augmentation changes it",
          "[augment][determinism]") {
    auto& registry = test::builtin_registry();
    const std::string text = experiment("{ flip: true, crop: 1, erase: 0.3 }");
    auto run = [&](int threads, const std::string& text, const std::string& name) {
        return test::run_quietly(bp::parse_experiment(text, "/exp/aug.yaml", {"train.threads=" + std::to_string(threads)},
                                                      registry),
                                 test::temp_dir("augment-" + name));
    };
    const auto one = run(1, text, "1");
    for (int t : {2, 8}) {
        const auto other = run(t, text, std::to_string(t));
        CHECK(other.threads_used > 1);
        CHECK(other.fingerprint == one.fingerprint);
        CHECK(other.history.back().validation.loss == one.history.back().validation.loss);
    }
    const auto plain = run(1, experiment("{ flip: false }"), "plain");
    CHECK(plain.fingerprint != one.fingerprint);
}

TEST_CASE("evaluation sees the data as it is", "[augment]") {
    auto& registry = test::builtin_registry();
    const bp::Experiment e = bp::parse_experiment(experiment("{ flip: true, crop: 2, erase: 1 }"), "/exp/aug.yaml", {},
                                                  registry);
    bp::PreparedRun p = bp::prepare_run(e, registry);
    bp::Trainer augmented(*p.network, p.loss, p.optimizer, e.train, e.seed, e.augment);
    bp::Trainer plain(*p.network, p.loss, p.optimizer, e.train, e.seed, {});
    CHECK(augmented.evaluate(p.validation).loss == plain.evaluate(p.validation).loss);
}

TEST_CASE("data.augment is refused for samples that are not images, and checked like any section", "[augment][errors]") {
    auto& registry = test::builtin_registry();
    const std::string flat = "name: aug\ndata: { source: two_spirals, samples: 64, augment: { flip: true } }\nmodel:\n"
                             "  - dense: { units: 2 }\nloss: softmax_cross_entropy\noptimizer: sgd\n";
    const bp::Experiment e = bp::parse_experiment(flat, "/exp/aug.yaml", {}, registry);
    CHECK(test::error_of([&] { bp::prepare_run(e, registry); }) ==
          "/exp/aug.yaml:2:52: data.augment transforms images [C, H, W], but two_spirals's samples are [2]");
    CHECK(test::error_of([&] { bp::parse_experiment(experiment("{ flip: true, crop: 65 }"), "/exp/aug.yaml", {}, registry); })
              .find("data.augment.crop") != std::string::npos);
    CHECK(test::error_of([&] { bp::parse_experiment(experiment("{ flips: true }"), "/exp/aug.yaml", {}, registry); })
              .find("unknown key 'flips' in data.augment (did you mean 'flip'?)") != std::string::npos);
}
