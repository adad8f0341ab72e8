// Counter-based random numbers: a value is a pure function of (key, counter), so the
// numbers a sample sees never depend on which thread handles it or in what order.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

namespace bp {

// SplitMix64's finaliser: a bijective mix with full avalanche. Counter-based
// generators (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3") are
// built the same way: a strong mix of a key and a position.
constexpr uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// FNV-1a over bytes; `h` continues an earlier hash, so a hash can run over pieces.
constexpr uint64_t fnv1a(std::string_view bytes, uint64_t h = 0xcbf29ce484222325ULL) {
    for (char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    return h;
}

// Turns a purpose name ("init", "shuffle") into a key component.
constexpr uint64_t hash_name(std::string_view s) { return fnv1a(s); }

// A stream of random numbers identified by its key. derive() makes an independent
// sub-stream: Random(seed).derive("init").derive(layer_index) is the init stream
// of one layer, whatever else the program does.
class Random {
public:
    explicit constexpr Random(uint64_t seed) : key_(mix64(seed)) {}

    constexpr Random derive(uint64_t id) const { return Random(key_, id); }
    constexpr Random derive(std::string_view purpose) const { return Random(key_, hash_name(purpose)); }

    // 64 random bits at position i.
    constexpr uint64_t bits(uint64_t i) const { return mix64(key_ ^ mix64(i)); }

    // Uniform in [0, 1), 24 bits of float precision, never 1.
    constexpr float uniform(uint64_t i) const {
        return static_cast<float>(bits(i) >> 40) * (1.0f / 16777216.0f);
    }
    // Uniform in [lo, hi).
    constexpr float uniform(uint64_t i, float lo, float hi) const { return lo + (hi - lo) * uniform(i); }

    // Standard normal at position i (Box-Muller on two 53-bit uniforms).
    double normal(uint64_t i) const {
        const double u1 = (static_cast<double>(bits(2 * i) >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
        const double u2 = static_cast<double>(bits(2 * i + 1) >> 11) * 0x1.0p-53;
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }

    // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; bias < n / 2^64).
    uint64_t below(uint64_t i, uint64_t n) const {
        return static_cast<uint64_t>((static_cast<unsigned __int128>(bits(i)) * n) >> 64);
    }

private:
    constexpr Random(uint64_t parent, uint64_t id) : key_(mix64(parent ^ mix64(id + 0x632be59bd9b4e019ULL))) {}
    uint64_t key_;
};

}  // namespace bp
