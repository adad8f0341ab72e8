// Sampling text from a trained language model (`backplane generate`).
#pragma once

#include "model/registry.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace bp {

struct GenerateOptions {
    std::string prompt = "\n";        // the bytes the text continues
    int64_t tokens = 400;             // bytes to sample
    double temperature = 1.0;         // logits are divided by it; 0 takes the most likely byte
    uint64_t seed = 1;                // the same seed, model and options give the same text
    std::vector<std::string> overrides;   // applied to the saved config
};

// Samples opts.tokens bytes after opts.prompt, one at a time, from the model in a run
// folder (its last checkpoint) or a checkpoint file, calling `emit` with the prompt
// once the model is loaded and checked, then with each byte sampled. The
// model must read T token ids and score every byte at every position ([T] -> [T, V],
// V <= 256, ids are bytes, as the text dataset makes them), and be causal (an output
// never sees later positions: LSTM, GRU, causal attention); both are checked before
// anything is emitted. The context is the last T bytes; while there are fewer, they sit
// at positions 0..k-1 and the prediction is read at k-1, as in training.
void generate(const std::filesystem::path& run_or_file, const GenerateOptions& opts, Registry& registry,
              const std::function<void(std::string_view)>& emit);

}  // namespace bp
