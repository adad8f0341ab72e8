// LibTorch (Debian's libtorch-dev 1.13.1, C++ API) peer of bench/torch_train.py: the same
// models, data, batch and optimizers, trained for some epochs; prints one line
//   RESULT {"samples_per_second": ..., "threads": N, "peak_rss_mib": ..., "final_loss": ...}
// over the training steps alone (data already in memory as torch tensors, shuffled
// before the clock, batches are views as in the python script).
//
// Usage: libtorch_train --model mlp|cnn [--opt sgd|adam] [--threads N] [--epochs E]
//                       [--limit L] [--batch B]          (defaults: adam, 1, 2, 0 = all, 128)
//
// Models as torch_train.py: MLP 784-256(ReLU)-128(ReLU)-10; CNN conv5x5 1->32, ReLU,
// maxpool 2, conv5x5 32->64, ReLU, maxpool 2, flatten, dense 1024->128, ReLU, dense 10.
// Loss torch::nn::functional::cross_entropy (softmax cross-entropy, batch mean), SGD lr 0.1
// momentum 0.9 or Adam lr 1e-3 (betas 0.9/0.999, eps 1e-8), no weight decay; the default
// initialisation of torch::nn::Linear / Conv2d (the same as python's). Gradients are set
// to none before each step, like opt.zero_grad(set_to_none=True) (1.13's C++ zero_grad()
// would zero them instead).
//
// Threads: torch::set_num_threads(N) (intra-op: OpenMP in this build, which also sizes
// oneDNN's convolutions) and at::set_num_interop_threads(1). LibTorch does NOT size
// OpenBLAS, which this build calls for the dense layers' GEMMs (sgemm_ through
// libblas.so.3, the pthread OpenBLAS on Debian 12): OpenBLAS would start one thread per
// core whatever set_num_threads says. So: if OPENBLAS_NUM_THREADS is set in the
// environment it is left alone (bench/compare_peers.sh searches it for the python peer);
// otherwise OpenBLAS is capped at N too (openblas_set_num_threads, found with dlsym).
// The RESULT line reports both, "threads" (torch's) and "blas_threads" (OpenBLAS's, -1 if
// OpenBLAS is not the BLAS loaded).
//
// final_loss: the mean training loss of the last epoch (per sample, from the loss each
// step already computes; loss.item() is read inside the clock, which costs a scalar read
// and no extra pass); "epoch_losses" lists every epoch's.
//
// Differences from torch_train.py: none in the model, loss, optimizer or data order
// semantics (the random streams, init and shuffles, are LibTorch's after manual_seed(1),
// as in the python script). Threads: torch_train.py leaves interop threads at their
// default and, unless OPENBLAS_NUM_THREADS is set, OpenBLAS at one thread per core; here
// both follow --threads as above. The RESULT line adds "blas_threads" and "epoch_losses".
#include <torch/torch.h>
#include <ATen/Parallel.h>

#include <dlfcn.h>
#include <sys/resource.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"

using namespace peers;

int main(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  at::set_num_interop_threads(1);
  torch::set_num_threads(a.threads);
  const int blas_threads = openblas_threads(std::getenv("OPENBLAS_NUM_THREADS") ? 0 : a.threads);
  torch::manual_seed(1);

  std::vector<long> xdims, ydims;
  std::vector<uint8_t> xb = read_idx(std::string(kRoot) + "/train-images-idx3-ubyte.gz", xdims);
  std::vector<uint8_t> yb = read_idx(std::string(kRoot) + "/train-labels-idx1-ubyte.gz", ydims);
  long n = xdims[0];
  if (a.limit && a.limit < n) n = a.limit;
  const long pixels = xdims[1] * xdims[2];
  torch::Tensor X = torch::from_blob(xb.data(), {n, pixels}, torch::kUInt8).to(torch::kFloat32).div_(255.0);
  torch::Tensor Y = torch::from_blob(yb.data(), {n}, torch::kUInt8).to(torch::kInt64);
  xb = {};
  yb = {};

  namespace nn = torch::nn;
  nn::Sequential model;
  if (a.model == "mlp") {
    model = nn::Sequential(nn::Linear(784, 256), nn::ReLU(), nn::Linear(256, 128), nn::ReLU(), nn::Linear(128, 10));
  } else {
    X = X.reshape({n, 1, xdims[1], xdims[2]});
    model = nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 32, 5)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
                           nn::Conv2d(nn::Conv2dOptions(32, 64, 5)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
                           nn::Flatten(), nn::Linear(1024, 128), nn::ReLU(), nn::Linear(128, 10));
  }
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (a.opt == "sgd")
    opt = std::make_unique<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  else
    opt = std::make_unique<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(1e-3));
  std::vector<torch::Tensor> params = model->parameters();

  double seconds = 0;
  std::vector<double> epoch_losses;
  for (int epoch = 0; epoch < a.epochs; ++epoch) {
    torch::Tensor perm = torch::randperm(n, torch::kInt64);
    torch::Tensor Xs = X.index_select(0, perm).contiguous(), Ys = Y.index_select(0, perm).contiguous();
    double loss_sum = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < n; i += a.batch) {
      const long j = std::min(n, i + a.batch);
      for (auto& p : params) p.mutable_grad() = torch::Tensor();  // zero_grad(set_to_none=True)
      torch::Tensor loss = nn::functional::cross_entropy(model->forward(Xs.slice(0, i, j)), Ys.slice(0, i, j));
      loss.backward();
      opt->step();
      loss_sum += loss.item<double>() * double(j - i);
    }
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    epoch_losses.push_back(loss_sum / double(n));
  }

  print_result(double(n) * a.epochs / seconds, torch::get_num_threads(), epoch_losses,
               ", \"blas_threads\": " + std::to_string(blas_threads));
  return 0;
}
