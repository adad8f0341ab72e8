#include "model/augment.hpp"

#include <algorithm>
#include <cmath>

namespace bp {

Schema augment_schema() {
    const AugmentConfig d;
    return Schema()
        .boolean("flip", d.flip, "mirror each image left-right with probability 1/2")
        .integer("crop", d.crop, 0, 64,
                 "pad each side by this many zero pixels, then crop the original size at a random place (0: off)")
        .number("erase", d.erase, 0.0, 1.0,
                "probability of zeroing a random rectangle of 2-40% of the image, aspect 0.3-3.3 (random erasing)");
}

AugmentConfig augment_config(const Params& p) {
    return {p.boolean("flip"), p.integer("crop"), p.number("erase")};
}

Params augment_params(const AugmentConfig& a) {
    Params p;
    p.set("flip", a.flip);
    p.set("crop", a.crop);
    p.set("erase", a.erase);
    return p;
}

void augment(ConstMatrixRef sample, MatrixRef out, const Shape& shape, const AugmentConfig& a, const Random& random) {
    const int64_t C = shape.dims[0], H = shape.dims[1], W = shape.dims[2];
    // The draws, each at its own position of the sample's stream.
    const bool flip = a.flip && random.uniform(0) < 0.5f;
    const int64_t dy = a.crop > 0 ? int64_t(random.below(1, uint64_t(2 * a.crop + 1))) - a.crop : 0;
    const int64_t dx = a.crop > 0 ? int64_t(random.below(2, uint64_t(2 * a.crop + 1))) - a.crop : 0;
    // out(y, x) = in(y + dy, x' + dx), x' the mirrored column when flipped; zero outside.
    for (int64_t c = 0; c < C; ++c)
        for (int64_t y = 0; y < H; ++y) {
            const int64_t sy = y + dy;
            for (int64_t x = 0; x < W; ++x) {
                const int64_t sx = (flip ? W - 1 - x : x) + dx;
                const bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
                out(0, (c * H + y) * W + x) = inside ? sample(0, (c * H + sy) * W + sx) : 0.0f;
            }
        }
    if (!(a.erase > 0 && random.uniform(3) < float(a.erase))) return;
    // An area of 2-40% of the image with an aspect ratio of 0.3-3.3 (log-uniform), as the
    // paper and torchvision draw it; one try, clipped to the image.
    const double area = double(H * W) * random.uniform(4, 0.02f, 0.4f);
    const double aspect = std::exp(random.uniform(5, std::log(0.3f), std::log(1 / 0.3f)));
    const int64_t h = std::clamp<int64_t>(int64_t(std::lround(std::sqrt(area * aspect))), 1, H);
    const int64_t w = std::clamp<int64_t>(int64_t(std::lround(std::sqrt(area / aspect))), 1, W);
    const int64_t top = int64_t(random.below(6, uint64_t(H - h + 1)));
    const int64_t left = int64_t(random.below(7, uint64_t(W - w + 1)));
    for (int64_t c = 0; c < C; ++c)
        for (int64_t y = top; y < top + h; ++y) out.row(0).segment((c * H + y) * W + left, w).setZero();
}

}  // namespace bp
