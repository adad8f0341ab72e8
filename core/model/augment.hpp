// Image augmentation, `data.augment`: each training sample, as it is gathered into its
// shard, is flipped, shifted (a random crop of the zero-padded image) and partly erased
// at random. Every draw comes from the counter-based generator keyed by (seed, epoch,
// sample index), so a sample gets the same transformation at any thread count, shard
// size or batch composition, and a resumed run the same as an unbroken one.
#pragma once

#include <backplane/params.hpp>
#include <backplane/random.hpp>
#include <backplane/tensor.hpp>

#include <cstdint>

namespace bp {

struct AugmentConfig {
    bool flip = false;    // mirror left-right with probability 1/2
    int64_t crop = 0;     // pad by this many zero pixels on each side, then crop the original size at random
    double erase = 0;     // probability of erasing a random rectangle (Zhong et al. 2017) to zero

    bool any() const { return flip || crop > 0 || erase > 0; }
};

Schema augment_schema();
AugmentConfig augment_config(const Params& p);
Params augment_params(const AugmentConfig& a);

// Writes into `out` the augmentation of `sample`, an image of shape [C, H, W] (checked
// by the caller), with the draws of `random` (one stream per sample and epoch).
void augment(ConstMatrixRef sample, MatrixRef out, const Shape& shape, const AugmentConfig& a, const Random& random);

}  // namespace bp
