// Token and position embeddings, the front of a sequence model.
//
// embedding: token ids [T] (integers held as floats, e.g. bytes of text) -> [T, D], row
// id of a (vocabulary, D) table per position. Its input is data, not a value with a
// gradient: it must come first in a branch, and backward writes no input gradient.
//
// positional_embedding: [T, C] -> [T, C], adds a vector per position: learned (a
// (T, C) table, GPT-2's) or the fixed sinusoids of Vaswani et al. (2017).
#include <backplane/backplane.hpp>

#include <cmath>
#include <string>

#include "layers.hpp"

namespace {

class Embedding final : public bp::Layer {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .integer("vocabulary", 256, 2, 1 << 24, "number of token ids: inputs are integers 0..vocabulary-1")
            .integer("dimension", 64, 1, 1 << 16, "length of each token's vector")
            .number("scale", 1.0, 0.0, 100.0, "standard deviation of the normal initial vectors (PyTorch's: 1)");
    }
    explicit Embedding(const bp::Params& p)
        : vocabulary_(p.integer("vocabulary")), dimension_(p.integer("dimension")), scale_(float(p.number("scale"))) {}

    bp::Shape build(const bp::Shape& input, const bp::Random& init) override {
        if (input.rank() != 1)
            throw bp::Error("embedding needs token ids [T], one per position, got " + input.str() +
                            " (it comes first: the data's samples are the ids)");
        positions_ = input.dims[0];
        params_ = {{"weight", bp::Matrix(vocabulary_, dimension_), bp::ParameterRole::embedding}};
        bp::Matrix& w = params_[0].value;
        for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = float(init.normal(uint64_t(i))) * scale_;
        return bp::Shape{positions_, dimension_};
    }
    std::span<bp::NamedTensor> parameters() override { return params_; }

    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext&) const override {
        const bp::Matrix& w = params_[0].value;
        for (Eigen::Index r = 0; r < x.rows(); ++r)
            for (int64_t t = 0; t < positions_; ++t) y.row(r).segment(t * dimension_, dimension_) = w.row(id(x(r, t), t));
    }

    // d weight[id] = sum of dy at the positions holding id, added in row and position
    // order: the same bits whatever the threads.
    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix> grads, bp::Workspace*, const bp::StepContext&) const override {
        grads[0].setZero();
        for (Eigen::Index r = 0; r < x.rows(); ++r)
            for (int64_t t = 0; t < positions_; ++t)
                grads[0].row(id(x(r, t), t)) += dy.row(r).segment(t * dimension_, dimension_);
        if (dx.rows() > 0) dx.setZero();   // ids have no gradient
    }

private:
    Eigen::Index id(float value, int64_t position) const {
        if (!(value >= 0.0f && value < float(vocabulary_)) || value != std::floor(value))
            throw bp::Error("embedding: the input at position " + std::to_string(position) + " is " +
                            std::to_string(value) + ", not a token id 0.." + std::to_string(vocabulary_ - 1) +
                            " (set vocabulary, or put the embedding first, on the data's ids)");
        return Eigen::Index(value);
    }

    int64_t vocabulary_, dimension_;
    float scale_;
    int64_t positions_ = 0;
    std::vector<bp::NamedTensor> params_;
};

class PositionalEmbedding final : public bp::Layer {
public:
    static bp::Schema schema() {
        return bp::Schema()
            .choice("kind", "learned", {"learned", "sinusoidal"},
                    "learned: a trained vector per position; sinusoidal: fixed sines and cosines of the position")
            .number("scale", 0.02, 0.0, 100.0, "learned: standard deviation of the normal initial vectors");
    }
    explicit PositionalEmbedding(const bp::Params& p)
        : learned_(p.text("kind") == "learned"), scale_(float(p.number("scale"))) {}

    bp::Shape build(const bp::Shape& input, const bp::Random& init) override {
        if (input.rank() != 2)
            throw bp::Error("positional_embedding needs a sequence [T, C], got " + input.str() +
                            " (an embedding makes one from token ids)");
        const int64_t positions = input.dims[0], channels = input.dims[1];
        table_.resize(positions, channels);
        if (learned_) {
            for (Eigen::Index i = 0; i < table_.size(); ++i) table_.data()[i] = float(init.normal(uint64_t(i))) * scale_;
            params_ = {{"weight", table_, bp::ParameterRole::embedding}};
        } else {
            // PE(t, 2i) = sin(t / 10000^(2i/C)), PE(t, 2i+1) = cos(the same)
            for (int64_t t = 0; t < positions; ++t)
                for (int64_t c = 0; c < channels; ++c) {
                    const double angle = double(t) / std::pow(10000.0, double(c - c % 2) / double(channels));
                    table_(t, c) = float(c % 2 == 0 ? std::sin(angle) : std::cos(angle));
                }
        }
        return input;
    }
    std::span<bp::NamedTensor> parameters() override { return params_; }

    void forward(bp::ConstMatrixRef x, bp::MatrixRef y, bp::Workspace*, const bp::StepContext&) const override {
        y = x.rowwise() + table().reshaped<Eigen::RowMajor>().transpose();
    }

    void backward(bp::ConstMatrixRef, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx,
                  std::span<bp::Matrix> grads, bp::Workspace*, const bp::StepContext&) const override {
        if (learned_) grads[0].reshaped<Eigen::RowMajor>() = dy.colwise().sum().transpose();
        if (dx.rows() > 0) dx = dy;
    }

private:
    const bp::Matrix& table() const { return learned_ ? params_[0].value : table_; }

    bool learned_;
    float scale_;
    bp::Matrix table_;   // sinusoidal: the fixed table; learned: the initial one (copied into params_)
    std::vector<bp::NamedTensor> params_;
};

}  // namespace

void register_embeddings(bp::Manifest& manifest) {
    bp::CheckCase ids{bp::Shape{5}, {{"vocabulary", int64_t(7)}, {"dimension", int64_t(3)}}};
    ids.indices = 7;
    manifest.layer<Embedding>("embedding", "token ids [T] -> [T, dimension]: a learned vector per token id",
                              Embedding::schema(), {ids});
    manifest.layer<PositionalEmbedding>("positional_embedding",
                                        "[T, C] -> [T, C]: adds a vector per position, learned or sinusoidal",
                                        PositionalEmbedding::schema(), {{bp::Shape{4, 3}}, {bp::Shape{3, 6}}});
}
