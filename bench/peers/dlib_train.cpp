// dlib DNN (Debian's libdlib-dev 19.24, CPU build with BLAS) peer of bench/torch_train.py:
// the same models, data, batch and optimizers, trained for some epochs; prints one line
//   RESULT {"samples_per_second": ..., "threads": N, "peak_rss_mib": ..., "final_loss": ..., "note": ...}
// over the training steps alone (data already in memory as dlib tensors, one per batch,
// built after each epoch's shuffle, before the clock).
//
// Usage: dlib_train --model mlp|cnn [--opt sgd|adam] [--threads N] [--epochs E]
//                   [--limit L] [--batch B]          (defaults: adam, 1, 2, 0 = all, 128)
//
// Models: MLP fc 256, relu, fc 128, relu, fc 10 on a 28x28 input (dlib's fc flattens);
// CNN con_<32,5,5,1,1,0,0> (5x5, stride 1, no padding: the con<> alias would pad to
// "same"), relu, max_pool<2,2,2,2> (no padding), con_<64,5,5,1,1,0,0>, relu,
// max_pool<2,2,2,2>, fc 128, relu, fc 10. Loss loss_multiclass_log: softmax followed by
// cross-entropy, mean over the batch, the same function as torch's CrossEntropyLoss (the
// log is dlib's safe_log, clamped at 1e-10). The step is what dnn_trainer does for one
// device (compute_parameter_gradients, then update_parameters with one solver per
// computational layer), called directly so that no trainer thread or data pipeline runs.
//
// Optimizers: dlib::sgd(weight_decay 0, momentum 0.9) at learning rate 0.1:
// v = 0.9 v - 0.1 g; w += v, which at a constant learning rate is the same sequence of
// weights as torch's v = 0.9 v + g; w -= 0.1 v (dlib's default weight decay, 0.0005, is
// set to 0). dlib::adam(weight_decay 0, 0.9, 0.999) at learning rate 1e-3: dlib computes
// w -= lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + 1e-8), torch
// w -= lr (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + 1e-8): the same but for where epsilon goes
// (dlib's is in effect 1e-8 / sqrt(1-b2^t) in torch's form: 3e-7 at the first step, 1e-8
// in the limit). That is the one inexactness, reported in "note".
// Initialisation: dlib's own is Glorot-uniform weights and zero biases; to match
// torch's default (every weight and bias uniform in +-1/sqrt(fan_in)) the parameters are
// redrawn that way (std::mt19937, seed 1) after one untimed forward pass, since dlib
// allocates a layer's parameters on its first forward pass.
//
// Threads: dlib's CPU DNN code (dlib/cuda/cpu_dlib.cpp, tensor_tools) is single-threaded
// except for its matrix products: fc layers and the convolutions (per sample: img2col then
// one GEMM, forward and both backward passes) go to BLAS (cblas_sgemm) because libdlib is
// built with DLIB_USE_BLAS and linked to libblas.so.3, which on Debian 12 is OpenBLAS
// (pthread build). dlib's own thread pool (parallel_for) is used by none of these layers.
// So --threads N sets OpenBLAS's thread count (openblas_set_num_threads, found with dlsym;
// it overrides OPENBLAS_NUM_THREADS), and "threads" reports OpenBLAS's count as read back
// (-1 if the BLAS loaded is not OpenBLAS, in which case --threads has no effect).
// Everything else (img2col, ReLU, pooling, softmax, bias and solver updates) runs on one
// thread whatever N is; the convolutions' per-sample GEMMs (32x25 by 25x576 and 64x800 by
// 800x64) are small for OpenBLAS to split.
//
// final_loss: the mean training loss of the last epoch (per sample), from the loss that
// compute_parameter_gradients returns for each step (no extra pass); "epoch_losses" lists
// every epoch's.
#include <dlib/dnn.h>

#include <dlfcn.h>
#include <sys/resource.h>
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
#include <vector>

#include "common.hpp"

namespace {

using namespace peers;

using namespace dlib;

template <typename SUBNET> using conv5_32 = add_layer<con_<32, 5, 5, 1, 1, 0, 0>, SUBNET>;
template <typename SUBNET> using conv5_64 = add_layer<con_<64, 5, 5, 1, 1, 0, 0>, SUBNET>;
using input_t = input<matrix<float>>;
using mlp_net = loss_multiclass_log<fc<10, relu<fc<128, relu<fc<256, input_t>>>>>>;
using cnn_net = loss_multiclass_log<
    fc<10, relu<fc<128, max_pool<2, 2, 2, 2, relu<conv5_64<max_pool<2, 2, 2, 2, relu<conv5_32<input_t>>>>>>>>>>;

// Redraws every weight and bias of fc_ and con_ layers uniform in +-1/sqrt(fan_in), like
// torch's default init of Linear and Conv2d. In both layers the parameter tensor holds the
// weights then the biases (fc_: (fan_in+1) x outputs; con_: filters then one bias each).
struct torch_init {
  std::mt19937* rng;
  void fill(tensor& p, long outputs) const {
    const long fan_in = long(p.size()) / outputs - 1;
    std::uniform_real_distribution<float> u(-1.0f / std::sqrt(float(fan_in)), 1.0f / std::sqrt(float(fan_in)));
    for (auto& v : p) v = u(*rng);
  }
  template <unsigned long N, fc_bias_mode B> void operator()(fc_<N, B>& l) const {
    fill(l.get_layer_params(), long(l.get_num_outputs()));
  }
  template <long F, long R, long C, int SY, int SX, int PY, int PX>
  void operator()(con_<F, R, C, SY, SX, PY, PX>& l) const {
    fill(l.get_layer_params(), l.num_filters());
  }
  template <typename L> void operator()(L&) const {}
};

template <typename Net, typename Solver>
int train(const Args& a, const std::vector<matrix<float>>& images, const std::vector<unsigned long>& labels,
          Solver solver, double lr, const char* note) {
  const int threads = openblas_threads(a.threads);
  const long n = long(images.size());
  Net net;
  std::vector<Solver> solvers(Net::num_computational_layers, solver);
  std::mt19937 rng(1);

  std::vector<long> order(n);
  std::vector<resizable_tensor> batches;
  std::vector<unsigned long> ys(n);
  auto shuffle_into_batches = [&]() {  // outside the clock, like X[perm] in the python script
    for (long i = 0; i < n; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<matrix<float>> xs;
    xs.reserve(a.batch);
    batches.resize((n + a.batch - 1) / a.batch);
    for (long b = 0, i = 0; i < n; ++b, i += a.batch) {
      xs.clear();
      for (long j = i; j < std::min(n, i + a.batch); ++j) {
        xs.push_back(images[order[j]]);
        ys[j] = labels[order[j]];
      }
      net.to_tensor(xs.begin(), xs.end(), batches[b]);
    }
  };

  double seconds = 0;
  std::vector<double> epoch_losses;
  for (int epoch = 0; epoch < a.epochs; ++epoch) {
    shuffle_into_batches();
    if (epoch == 0) {  // dlib sets its layers up on the first forward pass: do it, then redraw
      net.compute_loss(batches[0], ys.begin());
      visit_computational_layers(net, torch_init{&rng});
    }
    double loss_sum = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (long b = 0, i = 0; i < n; ++b, i += a.batch) {
      const double loss = net.compute_parameter_gradients(batches[b], ys.begin() + i);
      net.update_parameters(solvers, lr);
      loss_sum += loss * double(batches[b].num_samples());
    }
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    epoch_losses.push_back(loss_sum / double(n));
  }

  print_result(double(n) * a.epochs / seconds, threads, epoch_losses, ", \"note\": \"" + std::string(note) + "\"");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  std::vector<long> xdims, ydims;
  const std::vector<uint8_t> xb = read_idx(std::string(kRoot) + "/train-images-idx3-ubyte.gz", xdims);
  const std::vector<uint8_t> yb = read_idx(std::string(kRoot) + "/train-labels-idx1-ubyte.gz", ydims);
  long n = xdims[0];
  if (a.limit && a.limit < n) n = a.limit;
  const long rows = xdims[1], cols = xdims[2];
  std::vector<matrix<float>> images(n);
  std::vector<unsigned long> labels(n);
  for (long s = 0; s < n; ++s) {
    images[s].set_size(rows, cols);
    for (long r = 0; r < rows; ++r)
      for (long c = 0; c < cols; ++c) images[s](r, c) = xb[(s * rows + r) * cols + c] / 255.0f;
    labels[s] = yb[s];
  }

  const char* common = "dlib threads only OpenBLAS (GEMMs); the rest of its CPU DNN code is single-threaded";
  if (a.opt == "sgd") {
    static const std::string note = std::string(common) +
        "; sgd: dlib's v = 0.9 v - lr g, w += v (same weights as torch's at constant lr)";
    return a.model == "mlp" ? train<mlp_net>(a, images, labels, sgd(0.0f, 0.9f), 0.1, note.c_str())
                            : train<cnn_net>(a, images, labels, sgd(0.0f, 0.9f), 0.1, note.c_str());
  }
  static const std::string note = std::string(common) +
      "; adam: dlib adds eps=1e-8 to sqrt(v) before bias correction (torch after)";
  return a.model == "mlp" ? train<mlp_net>(a, images, labels, adam(0.0f, 0.9f, 0.999f), 1e-3, note.c_str())
                          : train<cnn_net>(a, images, labels, adam(0.0f, 0.9f, 0.999f), 1e-3, note.c_str());
}
