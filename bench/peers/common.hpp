// What the C++ peers of bench/torch_train.py share (bench/compare_peers.sh): the same
// flags (--model mlp|cnn --opt sgd|adam --threads N --epochs E --limit L --batch B), the
// Fashion-MNIST idx files, OpenBLAS's thread count and numbers for the RESULT line.
#pragma once

#include <dlfcn.h>
#include <sys/resource.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace peers {

inline const char* kRoot = "/usr/share/datasets/fashion-mnist";

struct Args {
  std::string model, opt = "adam";
  int threads = 1, epochs = 2, batch = 128;
  long limit = 0;
};

[[noreturn]] inline void usage(const std::string& why) {
  std::fprintf(stderr, "error: %s\nusage: <peer> --model mlp|cnn [--opt sgd|adam] [--threads N] "
               "[--epochs E] [--limit L] [--batch B]\n", why.c_str());
  std::exit(2);
}

inline Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i], v;
    auto eq = k.find('=');
    if (eq != std::string::npos) { v = k.substr(eq + 1); k = k.substr(0, eq); }
    else if (i + 1 < argc) v = argv[++i];
    else usage("missing value for " + k);
    try {
      if (k == "--model") a.model = v;
      else if (k == "--opt") a.opt = v;
      else if (k == "--threads") a.threads = std::stoi(v);
      else if (k == "--epochs") a.epochs = std::stoi(v);
      else if (k == "--limit") a.limit = std::stol(v);
      else if (k == "--batch") a.batch = std::stoi(v);
      else usage("unknown flag " + k);
    } catch (const std::logic_error&) { usage("bad value for " + k + ": " + v); }
  }
  if (a.model != "mlp" && a.model != "cnn") usage("--model must be mlp or cnn");
  if (a.opt != "sgd" && a.opt != "adam") usage("--opt must be sgd or adam");
  if (a.threads < 1 || a.epochs < 1 || a.batch < 1 || a.limit < 0) usage("bad numeric flag");
  return a;
}

// A gzip'd idx file of unsigned bytes: dims (big-endian) and the data.
inline std::vector<uint8_t> read_idx(const std::string& path, std::vector<long>& dims) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<uint8_t> buf;
  uint8_t chunk[1 << 16];
  int got;
  while ((got = gzread(f, chunk, sizeof chunk)) > 0) buf.insert(buf.end(), chunk, chunk + got);
  gzclose(f);
  if (got < 0 || buf.size() < 4 || buf[2] != 0x08) throw std::runtime_error("bad idx file " + path);
  const int ndim = buf[3];
  size_t count = 1;
  dims.clear();
  for (int i = 0; i < ndim; ++i) {
    const uint8_t* p = &buf[4 + 4 * i];
    dims.push_back((long(p[0]) << 24) | (long(p[1]) << 16) | (long(p[2]) << 8) | long(p[3]));
    count *= dims.back();
  }
  const size_t off = 4 + 4 * size_t(ndim);
  if (buf.size() < off + count) throw std::runtime_error("short idx file " + path);
  return std::vector<uint8_t>(buf.begin() + off, buf.begin() + off + count);
}

// OpenBLAS's thread count, set first when want > 0; -1 when OpenBLAS is not loaded.
inline int openblas_threads(int want) {
  auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  auto get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (set && want > 0) set(want);
  return get ? get() : -1;
}

inline std::string json_num(double x, int prec) {
  if (!std::isfinite(x)) return "null";
  char s[64];
  std::snprintf(s, sizeof s, "%.*f", prec, x);
  return s;
}

// The line bench/compare_peers.sh reads: samples/s, threads, the process's peak RSS, the
// last epoch's mean loss and every epoch's; `extra`: more fields, each as ', "key": value'.
inline void print_result(double samples_per_second, int threads, const std::vector<double>& epoch_losses,
                         const std::string& extra = "") {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  std::string losses;
  for (double l : epoch_losses) losses += (losses.empty() ? "" : ", ") + json_num(l, 6);
  std::printf("RESULT {\"samples_per_second\": %s, \"threads\": %d, \"peak_rss_mib\": %s, \"final_loss\": %s, "
              "\"epoch_losses\": [%s]%s}\n",
              json_num(samples_per_second, 1).c_str(), threads, json_num(ru.ru_maxrss / 1024.0, 1).c_str(),
              json_num(epoch_losses.back(), 6).c_str(), losses.c_str(), extra.c_str());
}

}  // namespace peers
