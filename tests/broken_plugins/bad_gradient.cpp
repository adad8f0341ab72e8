// Plausible-looking components with one bug each, for check-plugin to catch.
#include <backplane/backplane.hpp>

#include <vector>

namespace {

// tanh whose backward uses relu's derivative: forward is right, the gradient is not.
class BadTanh final : public bp::Activation {
public:
    void forward(bp::ConstMatrixRef x, bp::MatrixRef y) const override { y = x.array().tanh(); }
    void backward(bp::ConstMatrixRef x, bp::ConstMatrixRef, bp::ConstMatrixRef dy, bp::MatrixRef dx) const override {
        dx = (x.array() > 0).select(dy, 0.0f);
    }
};

// Momentum SGD that does not save its velocity: fine in one go, wrong after a resume.
class ForgetfulMomentum final : public bp::Optimizer {
public:
    static bp::Schema schema() { return bp::Schema().number("lr", 0.05, 0.0, 10.0, "learning rate"); }
    explicit ForgetfulMomentum(const bp::Params& p) : lr_(p.number("lr")) {}
    void step(std::span<bp::ParameterRef> params) override {
        if (velocity_.empty())
            for (const auto& p : params) velocity_.push_back(bp::Matrix::Zero(p.value.rows(), p.value.cols()));
        for (std::size_t i = 0; i < params.size(); ++i) {
            velocity_[i] = 0.9f * velocity_[i] + params[i].grad;
            params[i].value -= float(lr_) * velocity_[i];
        }
    }
    double learning_rate() const override { return lr_; }
    void set_learning_rate(double lr) override { lr_ = lr; }

private:
    double lr_;
    std::vector<bp::Matrix> velocity_;
};

}  // namespace

BACKPLANE_PLUGIN("bad-gradient", "1.0") {
    manifest.activation<BadTanh>("bad_tanh", "tanh with a wrong gradient");
    manifest.optimizer<ForgetfulMomentum>("forgetful_momentum", "momentum that a checkpoint loses",
                                          ForgetfulMomentum::schema());
}
