// `fashionnet toy`: the smallest training loop through the engine. A two-layer perceptron learns to
// tell apart Gaussian clusters; the loss printed every few steps falls. Useful to check an install and
// as a first example of the tape: forward with F:: ops, backward(loss), update the parameters.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>

#include "apps/command.h"
#include "core/autograd.h"
#include "core/philox.h"
#include "nn/functional.h"

namespace {
int run_toy(int argc, char** argv) {
  CLI::App app{"Train a tiny network through the engine and print its falling loss"};
  int steps = 200;
  std::string device = "auto";
  app.add_option("--steps", steps, "training steps");
  app.add_option("--device", device, "auto|cpu|cuda");
  CLI11_PARSE(app, argc, argv);
  fn::Device dev = fn::parse_device(device);
  using fn::Tensor;
  fn::Rng rng(1);
  const int n = 64, in = 8, hidden = 32, classes = 4;
  // Data: class c is centred at a random point; one-hot targets; squared error on softmax outputs.
  std::vector<float> xs(n * in), ys(n * classes, 0.f), centres(classes * in);
  for (auto& c : centres) c = float(rng.normal() * 2);
  for (int i = 0; i < n; ++i) {
    int c = i % classes;
    ys[i * classes + c] = 1.f;
    for (int k = 0; k < in; ++k) xs[i * in + k] = centres[c * in + k] + float(rng.normal() * 0.5);
  }
  Tensor x = Tensor::from(xs, {n, in}, dev), y = Tensor::from(ys, {n, classes}, dev);
  Tensor w1 = Tensor::randn({hidden, in}, rng, std::sqrt(2.0 / in), fn::DType::F32, dev).set_requires_grad(true);
  Tensor b1 = Tensor::zeros({hidden}, fn::DType::F32, dev).set_requires_grad(true);
  Tensor w2 = Tensor::randn({classes, hidden}, rng, 0.1, fn::DType::F32, dev).set_requires_grad(true);
  Tensor b2 = Tensor::zeros({classes}, fn::DType::F32, dev).set_requires_grad(true);
  std::printf("toy: %d samples, %d classes, MLP %d-%d-%d on %s\n", n, classes, in, hidden, classes,
              fn::device_name(dev));
  double first = 0, last = 0;
  for (int step = 0; step <= steps; ++step) {
    Tensor p = fn::F::softmax(fn::F::linear(fn::F::relu(fn::F::linear(x, w1, b1)), w2, b2));
    Tensor d = fn::F::add(p, fn::F::scale(y, -1.0));
    Tensor loss = fn::F::mean(fn::F::mul(d, d));
    fn::backward(loss);
    fn::NoGradGuard ng;
    for (Tensor* t : {&w1, &b1, &w2, &b2}) {
      t->add_(t->grad(), -2.0);
      t->zero_grad();
    }
    last = loss.item();
    if (step == 0) first = last;
    if (step % (steps / 10 > 0 ? steps / 10 : 1) == 0) std::printf("step %4d  loss %.5f\n", step, last);
  }
  std::printf("loss fell from %.5f to %.5f\n", first, last);
  return last < first ? 0 : 1;
}
}  // namespace

FN_COMMAND("toy", "train a tiny MLP through the engine (install check; prints a falling loss)", run_toy);
