// A steady-state training step allocates nothing: every buffer is sized when the
// trainer is built or in the first step. This executable counts every malloc-family
// call of the process (glibc's allocator, wrapped below) while steps run.
#include "model/experiment.hpp"
#include "gemm.hpp"
#include "helpers.hpp"
#include "train/run.hpp"
#include "train/trainer.hpp"

#include <array>
#include <atomic>
#include <cstdlib>

namespace {
std::atomic<bool> counting{false};
std::atomic<int64_t> allocations{0};
void count() {
    if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

// operator new, Eigen's aligned_malloc and the plugins all come here: the executable's
// definitions take the place of libc's for the whole process.
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void* malloc(std::size_t n) {
    count();
    return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
    count();
    return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
    count();
    return __libc_realloc(p, n);
}
void* memalign(std::size_t alignment, std::size_t n) {
    count();
    return __libc_memalign(alignment, n);
}
void* aligned_alloc(std::size_t alignment, std::size_t n) {
    count();
    return __libc_memalign(alignment, n);
}
int posix_memalign(void** p, std::size_t alignment, std::size_t n) {
    count();
    *p = __libc_memalign(alignment, n);
    return *p ? 0 : ENOMEM;
}
}

namespace {

// Allocations during steps 3 to the last of one epoch (steps 1 and 2 may size buffers),
// the learning rate set at every step as a per-step schedule does; `profiled`: with the
// timeline of --profile on.
int64_t steady_state_allocations(const std::string& yaml, const std::string& name, bool profiled = false) {
    auto& registry = test::builtin_registry();
    const auto file = test::write_file(test::temp_dir("alloc-" + name) / "e.yaml", yaml);
    const bp::Experiment e = bp::load_experiment(file, {}, registry);
    bp::PreparedRun run = bp::prepare_run(e, registry);
    bp::Trainer trainer(*run.network, run.loss, run.optimizer, e.train, e.seed, e.augment);
    if (profiled) trainer.start_profile();
    int64_t steps = 0;
    allocations = 0;
    const std::vector<bp::EpochMetrics> history;
    const int64_t per_epoch = (run.data.train.x.rows() + e.train.batch_size - 1) / e.train.batch_size;
    const double base = run.optimizer->learning_rate();
    std::function<double(int64_t)> step_rate;
    if (e.per_step)
        step_rate = [&](int64_t step) { return bp::scheduled_rate(e, *run.schedule, base, 1, history, step, per_epoch); };
    const auto m = trainer.run_epoch(1, run.data.train, [&](const bp::StepProgress&) {
        if (++steps == 2) counting = true;
    }, step_rate);
    counting = false;
    REQUIRE_FALSE(m.diverged);
    REQUIRE(steps >= 6);
    if (profiled) REQUIRE(trainer.timeline()->steps() == steps);
    return allocations;
}

}  // namespace

TEST_CASE("the allocation counter sees what a step would allocate", "[allocations]") {
    allocations = 0;
    counting = true;
    auto* kept = new std::vector<float>(100);
    const bp::Matrix m = bp::Matrix::Zero(4, 4);
    counting = false;
    delete kept;
    CHECK(allocations == 3);   // the vector, its buffer and the matrix
    CHECK(m.size() == 16);
}

TEST_CASE("a steady-state training step allocates nothing", "[allocations]") {
    const auto optimizer = GENERATE(as<std::string>{}, "{name: sgd, lr: 0.05, momentum: 0.9, clip_norm: 5}",
                                    "{name: adam, lr: 0.001, weight_decay: 0.01}", "{name: adamw, lr: 0.001}",
                                    "{name: nadam, lr: 0.001}", "{name: rmsprop, lr: 0.001, centered: true}",
                                    "{name: adagrad, lr: 0.01}", "{name: lion, lr: 0.0001, clip_value: 1}");
    const auto threads = GENERATE(1, 2);
    INFO(optimizer << ", " << threads << " threads");
    auto train = [&](int batch, int shard) {
        return "train: {epochs: 1, batch_size: " + std::to_string(batch) + ", shard_size: " + std::to_string(shard) +
               ", threads: " + std::to_string(threads) + "}\noptimizer: " + optimizer + "\n";
    };
    SECTION("MLP: dense, fused and separate activations, dropout, softmax cross-entropy") {
        // 32 x 256 x 160 is above the size that the products' backend sends to OpenBLAS.
        CHECK(steady_state_allocations("name: mlp\nseed: 3\ndata: {source: gaussian, shape: 256, samples: 640, classes: 4}\n"
                                       "model:\n  - dense: {units: 160, activation: relu}\n  - dropout: {rate: 0.2}\n"
                                       "  - dense: {units: 16}\n  - tanh\n  - dense: {units: 4}\n"
                                       "loss: softmax_cross_entropy\n" + train(64, 32),
                                       "mlp") == 0);
    }
    SECTION("CNN: conv2d (Winograd, direct at strides 1 and 2, im2col), batch norm, both poolings, flatten, mse") {
        CHECK(steady_state_allocations("name: cnn\nseed: 3\ndata: {source: gaussian, shape: 2x20x20, samples: 400, "
                                       "classes: 0, outputs: 3}\nmodel:\n"
                                       "  - conv2d: {filters: 4, kernel: 3, padding: 1, activation: relu, "
                                       "algorithm: winograd}\n"
                                       "  - conv2d: {filters: 5, kernel: 3, padding: 1, algorithm: direct}\n"
                                       "  - batch_norm\n"
                                       "  - conv2d: {filters: 5, kernel: 3, stride: 2, padding: 1, algorithm: direct}\n"
                                       "  - max_pool2d: {kernel: 2}\n"
                                       "  - conv2d: {filters: 6, kernel: 3, stride: 2}\n  - avg_pool2d: {kernel: 2}\n"
                                       "  - global_avg_pool\n  - dense: {units: 3}\nloss: mse\n" + train(40, 8),
                                       "cnn") == 0);
    }
    SECTION("a graph: a residual connection, concat, multiply, a node read by three") {
        CHECK(steady_state_allocations("name: graph\nseed: 3\ndata: {source: gaussian, shape: 2x6x6, samples: 400, "
                                       "classes: 3}\nmodel:\n"
                                       "  - {conv2d: {filters: 4, kernel: 3, padding: 1}, name: stem}\n"
                                       "  - batch_norm\n  - {conv2d: {filters: 4, kernel: 3, padding: 1}, name: branch}\n"
                                       "  - {add: {learn_scale: true}, name: sum, inputs: [stem, branch]}\n"
                                       "  - {concat: {}, name: both, inputs: [sum, stem]}\n"
                                       "  - {multiply: {}, inputs: [both, both]}\n  - global_avg_pool\n"
                                       "  - {dense: {units: 3}, name: logits}\n  - {add: {}, inputs: [logits, logits]}\n"
                                       "loss: softmax_cross_entropy\n" + train(40, 8),
                                       "graph") == 0);
    }
    SECTION("a sequence model: embedding, positions, layer norm, attention, a per-position dense") {
        CHECK(steady_state_allocations("name: seq\nseed: 3\ndata: {source: gaussian, shape: 12, integers: 20, "
                                       "samples: 400, classes: 3}\nmodel:\n"
                                       "  - {embedding: {vocabulary: 20, dimension: 8}, name: tokens}\n"
                                       "  - positional_embedding\n  - layer_norm\n"
                                       "  - {multi_head_attention: {heads: 2, dropout: 0.1}, name: attention}\n"
                                       "  - {add: {}, inputs: [tokens, attention]}\n"
                                       "  - dense: {units: 16, activation: gelu}\n  - flatten\n  - dense: {units: 3}\n"
                                       "loss: softmax_cross_entropy\n" + train(40, 8),
                                       "sequence") == 0);
    }
    SECTION("diagnostics every other step, and a cosine schedule with warmup set at every step") {
        CHECK(steady_state_allocations("name: diag\nseed: 3\ndata: {source: gaussian, shape: 64, samples: 640, classes: 4}\n"
                                       "model:\n  - dense: {units: 32, activation: relu}\n  - batch_norm\n"
                                       "  - dense: {units: 4}\nloss: softmax_cross_entropy\n"
                                       "train: {epochs: 1, batch_size: 64, shard_size: 32, diagnostics_every: 2, threads: " +
                                           std::to_string(threads) + "}\noptimizer: " +
                                           optimizer.substr(0, optimizer.size() - 1) +
                                           ", schedule: {name: cosine, warmup: 3, per_step: true}}\n",
                                       "diagnostics") == 0);
    }
    SECTION("profiled steps (--profile): every phase and node timed") {
        CHECK(steady_state_allocations("name: profiled\nseed: 3\ndata: {source: gaussian, shape: 64, samples: 640, "
                                       "classes: 4}\nmodel:\n  - dense: {units: 32, activation: relu}\n  - batch_norm\n"
                                       "  - dense: {units: 16}\n  - tanh\n  - dense: {units: 8}\n  - relu\n"
                                       "  - dense: {units: 4}\nloss: softmax_cross_entropy\n" + train(64, 16),
                                       "profiled", true) == 0);
        // 4 shards of 16 units each (7 nodes): at 2 threads they move between them.
    }
    SECTION("recurrent layers: an lstm's states into a gru's last state") {
        CHECK(steady_state_allocations("name: rnn\nseed: 3\ndata: {source: gaussian, shape: 12, integers: 20, "
                                       "samples: 400, classes: 3}\nmodel:\n"
                                       "  - embedding: {vocabulary: 20, dimension: 8}\n"
                                       "  - lstm: {units: 24}\n  - gru: {units: 16, return_sequences: false}\n"
                                       "  - dense: {units: 3}\n"
                                       "loss: softmax_cross_entropy\n" + train(40, 8),
                                       "recurrent") == 0);
    }
}

namespace {

// The shapes the product sweeps go through: up to and past the sizes where OpenBLAS
// stops using its small-matrix kernels (100^3) and where an operand no longer fits in
// Eigen's stack limit (32768 floats: 200 x 200, 512 x 100).
const int64_t sweep_dims[] = {1, 2, 3, 5, 8, 16, 40, 64, 100, 130, 200, 512};

// Calls visit(m, n, k, transpose_a, transpose_b) for every shape and transposition.
template <class Visit>
void for_each_shape(Visit&& visit) {
    for (const int64_t m : sweep_dims)
        for (const int64_t n : sweep_dims)
            for (const int64_t k : sweep_dims)
                for (int t = 0; t < 4; ++t) visit(m, n, k, bool(t & 1), bool(t & 2));
}

}  // namespace

TEST_CASE("a product allocates nothing after its first call, whatever its shape, transposition and CPU",
          "[allocations]") {
    // Eigen sizes its blocks by the CPU's caches: pretend to be other CPUs (these
    // caches, with this machine's vector width) as well as this one. OpenBLAS's kernels
    // follow the CPU too: ctest runs this test again under each kernel this CPU can run
    // (OPENBLAS_CORETYPE, tests/CMakeLists.txt).
    const auto caches = GENERATE(as<std::array<std::ptrdiff_t, 3>>{}, std::array<std::ptrdiff_t, 3>{0, 0, 0},
                                 std::array<std::ptrdiff_t, 3>{16 << 10, 128 << 10, 1 << 20},
                                 std::array<std::ptrdiff_t, 3>{48 << 10, 2 << 20, 32 << 20});
    std::ptrdiff_t l1, l2, l3;
    Eigen::internal::manage_caching_sizes(Eigen::GetAction, &l1, &l2, &l3);
    if (caches[0] > 0) Eigen::setCpuCacheSizes(caches[0], caches[1], caches[2]);
    INFO("Eigen's caches: " << Eigen::l1CacheSize() << ", " << Eigen::l2CacheSize() << ", " << Eigen::l3CacheSize());
    int64_t allocating = 0;
    for_each_shape([&](int64_t m, int64_t n, int64_t k, bool ta, bool tb) {
        const bp::Matrix a = ta ? bp::Matrix::Ones(k, m) : bp::Matrix::Ones(m, k);
        const bp::Matrix b = tb ? bp::Matrix::Ones(n, k) : bp::Matrix::Ones(k, n);
        bp::Matrix c(m, n);
        gemm(a, ta, b, tb, c);   // a first call may size buffers
        allocations = 0;
        counting = true;
        gemm(a, ta, b, tb, c, true);
        counting = false;
        if (allocations > 0) {
            UNSCOPED_INFO(m << "x" << k << " by " << k << "x" << n << ", transposed " << ta << tb);
            ++allocating;
        }
    });
    Eigen::setCpuCacheSizes(l1, l2, l3);
    CHECK(allocating == 0);
}

TEST_CASE("a product agrees with a plain one in double, whatever its shape and transposition", "[allocations]") {
    // gemm()'s routing and its blocked Eigen path against the triple loop.
    const bp::Random random(9);
    int64_t wrong = 0;
    for_each_shape([&](int64_t m, int64_t n, int64_t k, bool ta, bool tb) {
        bp::Matrix a(ta ? k : m, ta ? m : k), b(tb ? n : k, tb ? k : n), c(m, n);
        for (int64_t i = 0; i < a.size(); ++i) a.data()[i] = random.uniform(uint64_t(i), -1, 1);
        for (int64_t i = 0; i < b.size(); ++i) b.data()[i] = random.uniform(uint64_t(i) + 7919, -1, 1);
        for (int64_t i = 0; i < c.size(); ++i) c.data()[i] = random.uniform(uint64_t(i) + 104729, -1, 1);
        const bp::Matrix before = c;
        gemm(a, ta, b, tb, c, true);
        // Every entry of small results; of large ones, 8 x 8 spread over every block.
        double worst = 0;
        const int64_t di = std::max<int64_t>(1, m / 8), dj = std::max<int64_t>(1, n / 8);
        for (int64_t i = 0; i < m; i += di)
            for (int64_t j = 0; j < n; j += dj) {
                double sum = before(i, j);
                for (int64_t p = 0; p < k; ++p) sum += double(ta ? a(p, i) : a(i, p)) * double(tb ? b(j, p) : b(p, j));
                worst = std::max(worst, std::abs(sum - double(c(i, j))));
            }
        if (worst > 1e-6 * double(k) + 1e-6) {
            UNSCOPED_INFO(m << "x" << k << " by " << k << "x" << n << ", transposed " << ta << tb << ": off by " << worst);
            ++wrong;
        }
    });
    CHECK(wrong == 0);
}
