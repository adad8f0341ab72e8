// Geometry shared by the image layers: a sample row holds C*H*W values, channel-major.
#pragma once

#include <backplane/backplane.hpp>

#include <algorithm>
#include <string>
#include <utility>

struct ImageGeometry {
    int64_t channels, height, width;       // input
    int64_t kernel, stride, padding;
    int64_t out_height, out_width;

    int64_t in_size() const { return channels * height * width; }
    int64_t out_area() const { return out_height * out_width; }

    // Checks that `input` is [C, H, W] and the window fits; `layer` names the caller in errors.
    static ImageGeometry make(const bp::Shape& input, int64_t kernel, int64_t stride, int64_t padding,
                              const std::string& layer) {
        if (input.rank() != 3)
            throw bp::Error(layer + " needs images [channels, height, width], got " + input.str() +
                            " (flatten comes after the image layers, not before)");
        ImageGeometry g{input.dims[0], input.dims[1], input.dims[2], kernel, stride, padding, 0, 0};
        if (2 * padding > kernel)
            throw bp::Error(layer + ": padding " + std::to_string(padding) + " is more than half the kernel " +
                            std::to_string(kernel));
        g.out_height = (g.height + 2 * padding - kernel) / stride + 1;
        g.out_width = (g.width + 2 * padding - kernel) / stride + 1;
        if (g.height + 2 * padding < kernel || g.width + 2 * padding < kernel)
            throw bp::Error(layer + ": the " + std::to_string(kernel) + "x" + std::to_string(kernel) +
                            " window does not fit in " + std::to_string(g.height) + "x" + std::to_string(g.width) +
                            " with padding " + std::to_string(padding));
        return g;
    }
};

// The window offsets [lo, hi) that land inside [0, size) for an output at `o`:
// input position o * stride - padding + offset.
inline std::pair<int64_t, int64_t> inside(int64_t o, int64_t stride, int64_t padding, int64_t kernel, int64_t size) {
    const int64_t start = o * stride - padding;
    return {std::max<int64_t>(0, -start), std::min<int64_t>(kernel, size - start)};
}

// Calls visit(output index, input index) for every input position inside each output's
// window (padding positions are skipped), output by output, in a fixed order.
template <class Visit>
void for_each_window(const ImageGeometry& g, Visit&& visit) {
    int64_t out = 0;
    for (int64_t c = 0; c < g.channels; ++c)
        for (int64_t oh = 0; oh < g.out_height; ++oh) {
            const auto [i0, i1] = inside(oh, g.stride, g.padding, g.kernel, g.height);
            for (int64_t ow = 0; ow < g.out_width; ++ow, ++out) {
                const auto [j0, j1] = inside(ow, g.stride, g.padding, g.kernel, g.width);
                const int64_t base = (c * g.height + oh * g.stride - g.padding) * g.width + ow * g.stride - g.padding;
                for (int64_t i = i0; i < i1; ++i)
                    for (int64_t j = j0; j < j1; ++j) visit(out, base + i * g.width + j);
            }
        }
}
