// tiny-dnn (Debian's tiny-dnn 1.0.0a3, header only) peer of bench/torch_train.py: the same
// models, data, batch and optimizers, trained for some epochs; prints one line
//   RESULT {"samples_per_second": ..., "threads": N, "peak_rss_mib": ..., "final_loss": ..., "note": ...}
// over the training steps alone (data in memory as tiny-dnn's std::vector<vec_t> and
// label_t, shuffled before each epoch, outside the clock).
//
// Usage: tinydnn_train --model mlp|cnn [--opt sgd|adam] [--threads N] [--epochs E]
//                      [--limit L] [--batch B]          (defaults: adam, 1, 2, 0 = all, 128)
//
// Models: MLP fc<relu>(784,256), fc<relu>(256,128), fc<softmax>(128,10); CNN
// conv<relu>(28x28, 5x5, 1->32, valid), max_pool(2), conv<relu>(12x12, 5x5, 32->64, valid),
// max_pool(2), fc<relu>(1024,128), fc<softmax>(128,10) (tiny-dnn fuses the activation into
// a layer; ReLU then max pooling is the same order as torch's). Loss
// cross_entropy_multiclass on the softmax outputs: the same function as torch's
// CrossEntropyLoss, but tiny-dnn has no fused softmax-cross-entropy, so its gradient goes
// through -t/y and the softmax Jacobian (numerically weaker when a probability underflows;
// a NaN or inf loss shows as null). Gradients are averaged over the batch, as torch's mean.
// Weights and biases are drawn uniform in +-1/sqrt(fan_in) (weight_init::lecun for both),
// torch's default for Linear and Conv2d; tiny-dnn's own default is Xavier weights, zero
// biases. Seed 1 (tiny_dnn::set_random_seed) and std::mt19937(1) for the shuffles.
//
// Optimizers: SGD is tiny_dnn::momentum(alpha 0.1, mu 0.9, lambda 0): V = 0.9 V - 0.1 g;
// w += V, the same weights as torch's v = 0.9 v + g; w -= 0.1 v at a constant learning
// rate. Adam is NOT tiny_dnn::adam, whose bias correction is wrong for a network (its
// b1^t, b2^t are multiplied once per parameter vector updated, i.e. 6 (MLP) or 8 (CNN)
// times a step, and start at b1, b2 rather than 1) and which puts epsilon inside the
// square root: it is torch_adam below, a tiny-dnn optimizer (the library's optimizer
// interface, parallelised with its for_i like the built-in ones) with torch's formula
// w -= lr (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + 1e-8), t advanced once per batch.
// network::fit() calls optimizer.reset() at its start, so the optimizer given to train()
// (called once per epoch so that each epoch can be reshuffled) is a wrapper whose reset()
// keeps the state; it also starts the clock: fit() calls reset() after copying the
// epoch's data into its own tensors and right before the first batch.
//
// Threads: tiny-dnn parallelises its loops over the samples of a batch (each layer's
// forward and backward pass), the dense layers' weight-gradient loop and the optimizer's
// update of every parameter vector of >= 512 values, through its parallel_for. The Debian
// header (config.h) leaves CNN_USE_TBB and CNN_USE_OMP undefined, as tiny-dnn's own CMake
// build does by default, so parallel_for is the std::async fallback: each parallel loop
// starts std::thread::hardware_concurrency() new threads (get_nprocs(): all online cores,
// whatever the affinity) and joins them; their number cannot be chosen at run time, and
// some loops (the activations', the AVX convolution's backward pass) ignore the layers'
// parallelize flag. The alternatives were tried: CNN_USE_TBB does not build with Debian
// 12's oneTBB 2021 (tiny-dnn uses the removed tbb::task_scheduler_init), and CNN_USE_OMP
// would make --threads an omp_set_num_threads(N), but with GCC's libgomp it is several
// times slower (for_i nests a "#pragma omp parallel for" inside each iteration of the
// outer one, so the optimizer alone opens over 200,000 nested parallel regions a step on
// the MLP). So:
//   --threads equal to hardware_concurrency(): this binary, the library as packaged;
//   --threads 1: this program execs tinydnn_train_serial beside it (build.sh builds it
//     from this same source with -DCNN_SINGLE_THREAD, tiny-dnn's switch that turns
//     parallel_for into a plain loop), so that run is strictly single-threaded;
//   any other N: tiny-dnn still uses hardware_concurrency() threads, which "threads"
//     reports (with a note), never N.
// It also defines CNN_USE_AVX (and CNN_USE_SSE), as tiny-dnn's CMake build does by
// default: with -march=native (AVX) that selects the avx backend, whose convolution has a
// dedicated 5x5 kernel (forward and backward; both convolutions here are 5x5), and the
// vectorised dot / multiply-add helpers; its dense layers are the internal (plain loop)
// op either way. CNN_USE_GEMMLOWP, which config.h sets on Linux, is undefined (gemmlowp
// is not packaged; only quantized layers use it), and CNN_NO_SERIALIZATION is defined (not
// needed here). tiny-dnn allocates per step (per-sample gradient buffers are resized
// and zeroed each batch), so its speed depends on the allocator more than the others'.
//
// final_loss: the mean training loss of the last epoch (per sample). tiny-dnn computes
// only the loss gradient during training, so after each batch the loss is computed from
// the softmax outputs the forward pass left in the last layer (-log p[label]; no extra
// forward pass); that callback's time is taken out of the clock. "epoch_losses" lists
// every epoch's.
#define CNN_USE_AVX
#define CNN_USE_SSE
#define CNN_NO_SERIALIZATION
#include <tiny_dnn/config.h>
#undef CNN_USE_GEMMLOWP
#include <tiny_dnn/tiny_dnn.h>

#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"

namespace {

using namespace peers;

using Clock = std::chrono::steady_clock;

using namespace tiny_dnn;

// Adam exactly as torch.optim.Adam (no weight decay, no amsgrad); t is the step number,
// the same for every parameter vector of a step (next_step() after each batch).
struct torch_adam : public stateful_optimizer<2> {
  float_t lr = float_t(1e-3), b1 = float_t(0.9), b2 = float_t(0.999), eps = float_t(1e-8);
  long t = 1;
  void update(const vec_t& dW, vec_t& W, bool parallelize) override {
    vec_t& m = get<0>(W);
    vec_t& v = get<1>(W);
    const float_t bc1 = float_t(1 - std::pow(double(b1), double(t)));
    const float_t sqrt_bc2 = float_t(std::sqrt(1 - std::pow(double(b2), double(t))));
    const float_t step = lr / bc1;
    for_i(parallelize, static_cast<int>(W.size()), [&](int i) {
      m[i] = b1 * m[i] + (float_t(1) - b1) * dW[i];
      v[i] = b2 * v[i] + (float_t(1) - b2) * dW[i] * dW[i];
      W[i] -= step * m[i] / (std::sqrt(v[i]) / sqrt_bc2 + eps);
    });
  }
  void next_step() { ++t; }
};

// Forwards updates to the real optimizer; reset() (called by network::fit() right before
// its first batch) keeps the state across train() calls and starts the epoch's clock.
struct persistent_optimizer : public optimizer {
  optimizer* inner;
  Clock::time_point* start;
  persistent_optimizer(optimizer* o, Clock::time_point* s) : inner(o), start(s) {}
  void update(const vec_t& dW, vec_t& W, bool parallelize) override { inner->update(dW, W, parallelize); }
  void reset() override { *start = Clock::now(); }
};

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
#ifdef CNN_SINGLE_THREAD
  if (a.threads != 1) usage("this is the single-threaded build (CNN_SINGLE_THREAD): --threads must be 1");
  const int threads = 1;
#else
  const int threads = int(std::thread::hardware_concurrency());
  if (a.threads == 1 && threads != 1) {  // run the CNN_SINGLE_THREAD build of this source instead
    char self[4096];
    const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) usage("cannot find this executable's path to run tinydnn_train_serial");
    self[len] = 0;
    std::string serial(self);
    serial = serial.substr(0, serial.rfind('/') + 1) + "tinydnn_train_serial";
    execv(serial.c_str(), argv);
    usage("cannot run " + serial + " (build it with bench/peers/build.sh)");
  }
#endif
  set_random_seed(1);

  std::vector<long> xdims, ydims;
  const std::vector<uint8_t> xb = read_idx(std::string(kRoot) + "/train-images-idx3-ubyte.gz", xdims);
  const std::vector<uint8_t> yb = read_idx(std::string(kRoot) + "/train-labels-idx1-ubyte.gz", ydims);
  long n = xdims[0];
  if (a.limit && a.limit < n) n = a.limit;
  const long pixels = xdims[1] * xdims[2];
  std::vector<vec_t> images(n, vec_t(pixels));
  std::vector<label_t> labels(n);
  for (long s = 0; s < n; ++s) {
    for (long p = 0; p < pixels; ++p) images[s][p] = xb[s * pixels + p] / float_t(255);
    labels[s] = label_t(yb[s]);
  }

  network<sequential> net;
  if (a.model == "mlp") {
    net << fully_connected_layer<activation::relu>(784, 256) << fully_connected_layer<activation::relu>(256, 128)
        << fully_connected_layer<activation::softmax>(128, 10);
  } else {
    net << convolutional_layer<activation::relu>(28, 28, 5, 1, 32, padding::valid)
        << max_pooling_layer<activation::identity>(24, 24, 32, 2)
        << convolutional_layer<activation::relu>(12, 12, 5, 32, 64, padding::valid)
        << max_pooling_layer<activation::identity>(8, 8, 64, 2)
        << fully_connected_layer<activation::relu>(1024, 128)
        << fully_connected_layer<activation::softmax>(128, 10);
  }
  net.weight_init(weight_init::lecun()).bias_init(weight_init::lecun());

  momentum sgd;
  sgd.alpha = float_t(0.1);
  sgd.mu = float_t(0.9);
  sgd.lambda = float_t(0);
  torch_adam adam;
  Clock::time_point start;
  persistent_optimizer opt(a.opt == "sgd" ? static_cast<optimizer*>(&sgd) : static_cast<optimizer*>(&adam), &start);

  std::mt19937 rng(1);
  std::vector<long> order(n);
  std::vector<vec_t> xs(n);
  std::vector<label_t> ys(n);
  const layer* last = net[net.depth() - 1];
  double seconds = 0;
  std::vector<double> epoch_losses;
  for (int epoch = 0; epoch < a.epochs; ++epoch) {
    for (long i = 0; i < n; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (long i = 0; i < n; ++i) {
      xs[i] = images[order[i]];
      ys[i] = labels[order[i]];
    }
    double loss_sum = 0, callback_seconds = 0;
    long next = 0;  // first sample of the batch just trained
    Clock::time_point end;
    auto on_batch = [&]() {
      const auto c0 = Clock::now();
      const std::vector<tensor_t> outs = last->output();  // a copy (batch x 10 floats)
      const tensor_t& out = outs[0];                       // the batch's softmax outputs
      for (size_t j = 0; j < out.size(); ++j) loss_sum -= std::log(double(out[j][ys[next + long(j)]]));
      next += long(out.size());
      if (a.opt == "adam") adam.next_step();
      callback_seconds += std::chrono::duration<double>(Clock::now() - c0).count();
    };
    auto on_epoch = [&]() { end = Clock::now(); };
    net.train<cross_entropy_multiclass>(opt, xs, ys, size_t(a.batch), 1, on_batch, on_epoch);
    if (next != n) throw std::runtime_error("batch outputs do not add up to the epoch");
    seconds += std::chrono::duration<double>(end - start).count() - callback_seconds;
    epoch_losses.push_back(loss_sum / double(n));
  }

  std::string note = a.opt == "sgd"
      ? "softmax layer + cross_entropy_multiclass (not fused); sgd: tiny_dnn::momentum V = 0.9 V - lr g, w += V "
        "(same weights as torch's at constant lr)"
      : "softmax layer + cross_entropy_multiclass (not fused); adam: torch's formula as a user-defined tiny-dnn "
        "optimizer (tiny_dnn::adam's bias correction is wrong)";
#ifdef CNN_SINGLE_THREAD
  note += "; CNN_SINGLE_THREAD build";
#else
  note += "; std::async parallel_for: new threads for every parallel loop";
  if (a.threads != threads)
    note += "; --threads " + std::to_string(a.threads) + " not possible: tiny-dnn uses hardware_concurrency() threads";
#endif
  print_result(double(n) * a.epochs / seconds, threads, epoch_losses, ", \"note\": \"" + note + "\"");
  return 0;
}
