// bench_train_step: FashionNet's whole training step and embedding extraction, on one fixed synthetic
// in-memory batch (no loader, no disk), so the figure is the engine's and nothing else's.
//
//   step:      the trainer's TrainStep (fashionnet/train/step.h): forward (training, dropout on), all five
//              losses through fashionnet_loss, backward, clipping, SGD step with momentum and weight decay
//              (the trainer's optimiser), zero_grad;
//   embed:     forward only under NoGradGuard, evaluation mode (what `fashionnet embed` runs);
//   validate:  before timing, the step must give a finite loss, the loss must fall over the warm-up steps
//              (same batch, so it can only go down for a working backward), every parameter must get a
//              finite gradient, and two models built alike must produce bitwise-equal losses (CPU);
//   time:      --warmup steps, then --steps timed steps; the median step time gives images/s;
//   --profile: shares of the measured step. VGG16: the trunk's and conv5's convolutions and poolings timed
//              kernel by kernel at the model's shapes (forward, data gradient, filter gradient). Lite0 and
//              ResNet-50: every op kind (Lite0: batch norm with its ReLU6, expand_bn + depthwise + depthwise_bn as
//              one op, depthwise, 1x1, stem; ResNet-50: the 7x7 stem, max pool, 1x1 and 3x3 convs, batch norm with
//              its ReLU; both: residual add, pooling, fc layers, losses, optimiser), each op run alone at its shape
//              through its module and autograd (OpProfile: profile_lite0_ops, profile_resnet50_ops).
//              Every backbone: landmark pooling, the losses, clipping and SGD at the model's shapes;
//   memory:    allocator peak bytes on the device and the process's max RSS;
//   --pytorch: runs bench/pytorch/train_step.py in the same run (PyTorch's figure on the same machine)
//              and prints ours / theirs. Missing script, or a backbone other than VGG16 (the script builds
//              fashionnet_ref.py's VGG16 FashionNet only): 'not available'.
//   --no-landmarks: the batch without landmark labels (an ImageFolder's photos), the run as `train` makes it
//              (net.local_at "absent"): the step skips the pose branch, which no term reads there;
//   --quick:   the tiny preset, 2 + 2 steps: a smoke run for the tests.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "core/allocator.h"
#include "core/autograd.h"
#include "core/build_commit.h"
#include "core/device.h"
#include "core/philox.h"
#include "data/loader.h"
#include "fashionnet/model/batch.h"
#include "fashionnet/model/config.h"
#include "fashionnet/model/efficientnet_lite0.h"
#include "fashionnet/model/fashionnet.h"
#include "fashionnet/model/losses.h"
#include "fashionnet/model/resnet50.h"
#include "fashionnet/model/vgg16.h"
#include "fashionnet/train/step.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_direct.h"
#include "kernels/conv2d_winograd.h"
#include "kernels/gemm.h"
#include "kernels/maxpool2d.h"
#include "nn/functional.h"
#include "nn/landmark_pool.h"
#include "nn/losses.h"
#include "nn/optim.h"

#ifdef FN_WITH_CUDA
#include "core/cuda_context.h"
#endif

namespace {

using fn::Device;
using fn::Tensor;
using json = nlohmann::json;
namespace fnn = fn::fashionnet;

using fn::bench::load_average;
using fn::bench::median;
using fn::bench::now_s;

void sync(Device d) {
#ifdef FN_WITH_CUDA
  if (d == Device::CUDA) fn::cuda::synchronize();
#endif
  (void)d;
}

// CPU seconds used by every thread of the process: on a loaded machine this still measures our work,
// where wall time also counts the time other processes held the cores.
double cpu_s() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

double max_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// A fixed batch of P items x K images: random pixels, random landmarks inside the image with ~3/4 of
// them visible (or, `landmarks` false, none: an ImageFolder's photos), a category per item, random attribute
// labels with most known. Made as a data::Batch and turned into tensors by to_tensors, as the trainer's
// batches are.
fnn::BatchTensors synthetic_batch(const fnn::TrainConfig& cfg, int batch, Device d, uint64_t seed, bool landmarks) {
  fn::Rng rng(seed, 0x62656e);
  const int n = batch, s = cfg.net.input, a = cfg.net.attributes;
  const int K = std::max(1, cfg.K);
  fn::data::Batch b;
  fn::data::resize_batch(b, n, s, size_t(std::max(a, 0)));
  for (float& v : b.image) v = float(rng.normal());
  for (float& v : b.lm_xy) v = float(rng.uniform() * double(s - 1));
  for (float& v : b.lm_visible) v = rng.uniform() < 0.75 ? 1.f : 0.f;
  for (int i = 0; i < n; ++i) {
    b.item[size_t(i)] = i / K;
    b.category[size_t(i)] = (i / K) % cfg.net.categories;
  }
  for (size_t i = 0; i < b.attr.size(); ++i) {
    b.attr[i] = rng.uniform() < 0.1 ? 1.f : 0.f;
    b.attr_known[i] = rng.uniform() < 0.9 ? 1.f : 0.f;
  }
  if (!landmarks) {  // as the loader leaves an image without landmarks
    std::fill(b.lm_xy.begin(), b.lm_xy.end(), 0.f);
    std::fill(b.lm_visible.begin(), b.lm_visible.end(), 0.f);
  }
  return fnn::to_tensors(b, std::vector<uint8_t>(size_t(n), landmarks ? 1 : 0), d);
}

// A model, its optimiser and the training step, as the trainer sets them up (stage 2's learning rate and
// weights: every term on).
struct Setup {
  fnn::TrainConfig cfg;
  std::unique_ptr<fnn::FashionNet> model;
  std::unique_ptr<fn::nn::SGD> sgd;
  std::unique_ptr<fnn::TrainStep> train;
  fnn::BatchTensors batch;
  std::vector<Tensor> params;
  int64_t step = 0;

  Setup(const fnn::TrainConfig& c, int batch_size, Device d, bool landmarks) : cfg(c) {
    model = std::make_unique<fnn::FashionNet>(cfg.net, cfg.seed);
    model->to(d);
    params = model->parameters();
    fn::nn::SgdOptions so;
    so.lr = float(cfg.stages.at(1).lr);
    so.momentum = float(cfg.momentum);
    so.weight_decay = float(cfg.weight_decay);
    sgd = std::make_unique<fn::nn::SGD>(params, so);
    fnn::LossContext ctx = fnn::loss_context(cfg);
    if (cfg.net.attributes > 0) {
      ctx.attr_w_pos = Tensor::full({cfg.net.attributes}, 5.0, fn::DType::F32, d);
      ctx.attr_w_neg = Tensor::full({cfg.net.attributes}, 0.55, fn::DType::F32, d);
    }
    fnn::StepOptions to;
    to.clip_grad_norm = cfg.clip_grad_norm;  // as the trainer does
    train = std::make_unique<fnn::TrainStep>(*model, sgd.get(), ctx, to);
    batch = synthetic_batch(cfg, batch_size, d, 7, landmarks);
  }

  const fnn::LossWeights& weights() const { return cfg.stages.at(1).weights; }

  // One training step; returns the total loss. The step's index seeds dropout's masks.
  double train_step() { return train->run(batch, weights(), step++, "bench").total; }
  // One training step with step 0's dropout masks: the loss it returns is the same function each time, so
  // that a falling loss means the steps descend, not that the masks changed.
  double train_step_same_masks() { return train->run(batch, weights(), 0, "bench").total; }

  void embed() {
    fn::NoGradGuard ng;
    fn::nn::ModeGuard eval_mode(*model, /*training=*/false);
    fnn::Outputs out = model->forward(batch.images, fnn::PoolAt{}, 0);
    (void)out.embedding.numel();
  }
};

// Before timing: finite losses, a falling loss (on a fixed batch and fixed dropout masks), finite gradients
// everywhere, bitwise reproducibility.
void validate(const fnn::TrainConfig& cfg, int batch, Device d, int steps, bool landmarks) {
  Setup a(cfg, batch, d, landmarks), b(cfg, batch, d, landmarks);
  std::vector<double> la, lb;
  for (int i = 0; i < steps; ++i) la.push_back(a.train_step_same_masks());
  FN_CHECK(std::isfinite(la.front()) && std::isfinite(la.back()), "bench_train_step: loss is not finite: ", la.front(),
           " .. ", la.back());
  FN_CHECK(la.back() < la.front(), "bench_train_step: the loss does not fall on a fixed batch over ", steps,
           " steps: ", la.front(), " -> ", la.back());
  // Gradients: one more forward/backward without the optimiser step.
  {
    const fnn::StepResult r = a.train->forward_backward(a.batch, a.weights(), 99, "bench");
    std::vector<std::string> terms;  // without landmarks the pose branch's terms are absent, and it gets none
    for (auto& [term, v] : r.terms) terms.push_back(term);
    for (auto& [name, p] : a.model->named_parameters()) {
      if (fnn::reached_only_by_absent_terms(name, terms)) continue;
      FN_CHECK(p.grad().defined(), "bench_train_step: parameter ", name, " got no gradient");
      for (float v : p.grad().to_vector())
        FN_CHECK(std::isfinite(v), "bench_train_step: parameter ", name, " has a non-finite gradient");
    }
    a.sgd->zero_grad();
  }
  if (d == Device::CPU) {
    for (int i = 0; i < steps; ++i) lb.push_back(b.train_step_same_masks());
    for (int i = 0; i < steps; ++i)
      FN_CHECK(la[size_t(i)] == lb[size_t(i)], "bench_train_step: two identical runs differ at step ", i, ": ",
               la[size_t(i)], " vs ", lb[size_t(i)], " (CPU results must reproduce bitwise)");
  }
  std::printf("validate: loss %.4f -> %.4f over %d steps, all gradients finite%s\n", la.front(), la.back(), steps,
              d == Device::CPU ? ", bitwise reproducible" : "");
}

// Times f `repeats` times after one warm-up; median seconds.
double time_median(int repeats, Device d, const std::function<void()>& f) {
  f();
  sync(d);
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    double t0 = now_s();
    f();
    sync(d);
    t.push_back(now_s() - t0);
  }
  return median(t);
}

// Per-kernel profile of the convolutions and poolings at the model's shapes (one batch), in the order
// the graph runs them. Returns rows {layer, fwd_ms, bwd_data_ms, bwd_filter_ms}.
json profile_layers(const fnn::TrainConfig& cfg, int batch, Device d, int repeats, double step_s) {
  std::vector<int> ch = fnn::vgg_channels(cfg.net);
  struct L {
    std::string name;
    int cin, cout, hw;
    bool pool_after;
  };
  std::vector<L> layers;
  const int convs[5] = {2, 2, 3, 3, 3};
  int in = 3, hw = cfg.net.input;
  for (int s = 0; s < 5; ++s) {
    for (int k = 0; k < convs[s]; ++k) {
      layers.push_back({"conv" + std::to_string(s + 1) + "_" + std::to_string(k + 1), in, ch[size_t(s)], hw,
                        k + 1 == convs[s]});
      in = ch[size_t(s)];
    }
    hw /= 2;
  }
  fn::Rng rng(3, 0x70726f);
  json rows = json::array();
  double conv_total = 0, pool_total = 0;
  std::printf("\nprofile (batch %d; conv5 counted twice: two branches)\n", batch);
  std::printf("  %-9s %14s %9s %9s %9s %9s\n", "layer", "shape", "fwd ms", "bwd_x ms", "bwd_w ms", "pool ms");
  for (const L& l : layers) {
    const int times = l.name.rfind("conv5", 0) == 0 ? 2 : 1;
    Tensor x = Tensor::randn({batch, l.cin, l.hw, l.hw}, rng, 1.0, fn::DType::F32, d);
    Tensor w = Tensor::randn({l.cout, l.cin, 3, 3}, rng, 0.1, fn::DType::F32, d);
    Tensor b = Tensor::randn({l.cout}, rng, 0.1, fn::DType::F32, d);
    Tensor y = Tensor::empty({batch, l.cout, l.hw, l.hw}, fn::DType::F32, d);
    Tensor gx = Tensor::empty_like(x), gw = Tensor::empty_like(w);
    double f = time_median(repeats, d, [&] { fn::kernels::conv2d_forward(x, w, b, y, 1, 1, true); });
    double bx = l.cin == 3 ? 0 : time_median(repeats, d, [&] { fn::kernels::conv2d_backward_data(y, w, gx, 1, 1); });
    // Where the CPU default is the direct 3x3 kernel or Winograd, im2col + GEMM timed right after, for
    // comparison (the direct kernel has no filter gradient; Winograd's also serves some thin layers).
    fn::kernels::ConvGeom g = fn::kernels::conv_geom(x.shape(), w.shape(), 1, 1);
    const bool direct = d == Device::CPU && fn::kernels::conv3x3_direct_preferred(g);
    const bool winograd = d == Device::CPU && fn::kernels::conv3x3_winograd_preferred(g);
    const bool winograd_w = d == Device::CPU && fn::kernels::conv3x3_winograd_filter_grad_preferred(g);
    const fn::kernels::ConvOptions gemm{fn::kernels::ConvAlgo::Im2colGemm};
    double f_gemm = 0, bx_gemm = 0, bw_gemm = 0;
    if (direct || winograd) {
      f_gemm = time_median(repeats, d, [&] { fn::kernels::conv2d_forward(x, w, b, y, 1, 1, true, gemm); });
      if (l.cin != 3)
        bx_gemm = time_median(repeats, d, [&] { fn::kernels::conv2d_backward_data(y, w, gx, 1, 1, gemm); });
    }
    double bw = time_median(repeats, d, [&] { fn::kernels::conv2d_backward_filter(x, y, gw, 1, 1); });
    if (winograd_w)
      bw_gemm = time_median(repeats, d, [&] { fn::kernels::conv2d_backward_filter(x, y, gw, 1, 1, gemm); });
    double p = 0;
    if (l.pool_after) {
      Tensor py = Tensor::empty({batch, l.cout, l.hw / 2, l.hw / 2}, fn::DType::F32, d);
      Tensor pgx = Tensor::empty_like(y);
      p = time_median(repeats, d, [&] {
        fn::kernels::max_pool2d_forward(y, py, 2, 2, 0);
        fn::kernels::max_pool2d_backward(y, py, py, pgx, 2, 2, 0);
      });
    }
    conv_total += times * (f + bx + bw);
    pool_total += times * p;
    std::printf("  %-9s %14s %9.2f %9.2f %9.2f %9.2f", l.name.c_str(),
                (std::to_string(l.cin) + ">" + std::to_string(l.cout) + "@" + std::to_string(l.hw)).c_str(), 1e3 * f,
                1e3 * bx, 1e3 * bw, 1e3 * p);
    if (direct || winograd || winograd_w) {
      std::printf("   %s%s; im2col+GEMM:", direct ? "direct 3x3" : winograd ? "winograd" : "im2col+GEMM",
                  winograd_w && !winograd ? ", dW winograd" : "");
      if (direct || winograd) std::printf(" fwd %.2f bwd_x %.2f", 1e3 * f_gemm, 1e3 * bx_gemm);
      if (winograd_w) std::printf(" bwd_w %.2f", 1e3 * bw_gemm);
    }
    std::printf("\n");
    rows.push_back({{"layer", l.name}, {"in", l.cin}, {"out", l.cout}, {"hw", l.hw}, {"branches", times},
                    {"fwd_ms", 1e3 * f}, {"bwd_data_ms", 1e3 * bx}, {"bwd_filter_ms", 1e3 * bw}, {"pool_ms", 1e3 * p},
                    {"direct3x3", direct}, {"winograd3x3", winograd}, {"winograd3x3_filter_grad", winograd_w}, {"im2col_gemm_fwd_ms", 1e3 * f_gemm},
                    {"im2col_gemm_bwd_data_ms", 1e3 * bx_gemm}, {"im2col_gemm_bwd_filter_ms", 1e3 * bw_gemm}});
  }
  double rest = step_s - conv_total - pool_total;
  std::printf("  convolutions %.1f ms (%.0f%%), pooling %.1f ms (%.0f%%), everything else %.1f ms (%.0f%%) of the %.1f ms step\n",
              1e3 * conv_total, 100 * conv_total / step_s, 1e3 * pool_total, 100 * pool_total / step_s, 1e3 * rest,
              100 * rest / step_s, 1e3 * step_s);
  // The conv1_1 data gradient is not part of the step (the image needs no gradient), hence bx = 0 there.
  return {{"layers", rows}, {"conv_ms", 1e3 * conv_total}, {"pool_ms", 1e3 * pool_total}, {"rest_ms", 1e3 * rest}};
}

// FashionNet's own kernels (issue 3) at the model's shapes, each against the step: landmark_pool forward +
// backward at conv4, the five loss terms forward + backward on the outputs of one real forward, the
// gradient-norm clip and the SGD update. Target on the CPU: none above 5% of a cpu-small step.
json profile_fashionnet_kernels(Setup& s, Device d, int repeats, double step_s) {
  const fnn::LossWeights& w = s.weights();
  const fnn::LossContext& ctx = s.train->loss_context();
  fnn::Outputs out = s.model->forward(s.batch.images, fnn::PoolAt{s.batch.landmarks, s.batch.visible}, 0);  // training mode
  fn::clear_tape();
  auto leaf = [&](const Tensor& t) {
    if (!t.defined()) return t;
    Tensor l = Tensor::from(t.to_vector(), t.shape(), d);
    l.set_requires_grad(true);
    return l;
  };
  fnn::Outputs o;
  o.landmark_loc = leaf(out.landmark_loc);
  o.landmark_vis = leaf(out.landmark_vis);
  o.embedding = leaf(out.embedding);
  o.category = leaf(out.category);
  o.attributes = leaf(out.attributes);
  Tensor conv4 = leaf(out.conv4);
  fn::kernels::LandmarkPoolArgs args;  // as FashionNet::local_features sets them
  args.stride = s.model->trunk_stride();
  args.radius = s.cfg.net.pool_radius;
  args.mode = s.cfg.net.pool_mode;
  conv4.set_grad(Tensor::zeros_like(conv4));  // pool4's gradient, as in the step: landmark_pool adds into it
  double pool = time_median(repeats, d, [&] {
    fn::backward(fn::F::sum(fn::F::landmark_pool(conv4, s.batch.landmarks, s.batch.visible, args)));
  });
  double losses = time_median(repeats, d, [&] { fn::backward(fnn::fashionnet_loss(o, s.batch, w, ctx).total); });
  // Gradients on every parameter, as after a real backward, for the clip and the update.
  s.train->forward_backward(s.batch, w, 1, "bench");
  double clip = time_median(repeats, d, [&] { fnn::clip_gradients(s.params, 1e30); });
  double sgd = time_median(repeats, d, [&] { s.sgd->step(); });
  s.sgd->zero_grad();
  std::printf("\nFashionNet kernels at the model's shapes (targets: CPU each < 5%% of a cpu-small step; GPU all < 2%% of a paper step)\n");
  json rows = json::array();
  for (auto [name, t] : std::vector<std::pair<std::string, double>>{{"landmark_pool fwd+bwd", pool},
                                                                    {"five losses fwd+bwd", losses},
                                                                    {"clip_gradients", clip},
                                                                    {"sgd step", sgd}}) {
    std::printf("  %-22s %8.3f ms  %5.2f%% of the step\n", name.c_str(), 1e3 * t, 100 * t / step_s);
    rows.push_back({{"kernel", name}, {"ms", 1e3 * t}, {"share_of_step", t / step_s}});
  }
  return rows;
}

// The first value of `rows` (profile_fashionnet_kernels') for `kernel`, in seconds.
double kernel_s(const json& rows, const std::string& kernel) {
  for (const json& r : rows)
    if (r["kernel"] == kernel) return r["ms"].get<double>() / 1e3;
  FN_CHECK(false, "bench_train_step: no figure for ", kernel);
  return 0;
}

// One op run alone with gradients recorded: y = f(), then backward(y, seed) with a random seed gradient, as the
// step's backward hands each node its output's gradient. `leaves` (the op's input and parameters) lose their
// gradients before each run, as zero_grad does between steps. Median of `repeats` after one warm-up.
// Wall time, and the process's CPU time (all threads: on a loaded machine it still measures our work, where
// wall time also counts the time other processes held the cores).
struct Timed {
  double fwd = 0, bwd = 0, fwd_cpu = 0, bwd_cpu = 0;
  fn::Shape out;
};
Timed time_fwd_bwd(int repeats, const std::vector<Tensor>& leaves, const std::function<Tensor()>& f, fn::Rng& rng) {
  Timed t;
  Tensor seed;
  std::vector<double> tf, tb, cf, cb;
  for (int r = 0; r <= repeats; ++r) {
    for (Tensor l : leaves) l.zero_grad();
    const double t0 = now_s(), c0 = cpu_s();
    Tensor y = f();
    sync(y.device());  // on a GPU the launches return before the work is done
    const double t1 = now_s(), c1 = cpu_s();
    if (!seed.defined()) seed = Tensor::randn(y.shape(), rng, 1.0, fn::DType::F32, y.device());
    t.out = y.shape();
    sync(y.device());
    const double t2 = now_s(), c2 = cpu_s();
    fn::backward(y, seed);
    sync(y.device());
    const double t3 = now_s(), c3 = cpu_s();
    if (r > 0) tf.push_back(t1 - t0), tb.push_back(t3 - t2), cf.push_back(c1 - c0), cb.push_back(c3 - c2);
  }
  t.fwd = median(tf), t.bwd = median(tb), t.fwd_cpu = median(cf), t.bwd_cpu = median(cb);
  return t;
}

// --profile for the backbones with batch norm (Lite0, ResNet-50): the share of each kind of op in a training
// step. Every op of the graph (the backbone's file, fashionnet.cpp's fully connected layers) is run alone at
// the shape the model runs it, through the same module or F:: call and the same autograd (time_fwd_bwd). The
// branches' ops count twice: conv5_global and conv5_pose each run their copy of the last stages, the pooling
// and fc6. Landmark pooling, the five losses and the optimiser (clip + SGD) are profile_fashionnet_kernels'
// figures. "rest" is the measured step less all of these: the batch's upload, the autograd walk and the
// gradient accumulation between ops, and whatever an op costs in the graph more (or less) than alone (caches).
class OpProfile {
 public:
  // `order`: the table's rows, first to last (a kind met later is appended).
  OpProfile(Setup& s, int batch, Device d, int repeats, std::initializer_list<const char*> order)
      : s_(s), batch_(batch), d_(d), repeats_(repeats), rng_(5, 0x6c697465) {
    for (const char* k : order) kind(k);
  }

  // Times one op, adds it `times` over to its kind, and returns its output's shape.
  fn::Shape op(const std::string& k, const std::string& where, int times, const std::vector<Tensor>& leaves,
               const std::function<Tensor()>& f) {
    Timed t = time_fwd_bwd(repeats_, leaves, f, rng_);
    Kind& kk = kind(k);
    kk.ops += times, kk.fwd += times * t.fwd, kk.bwd += times * t.bwd, kk.cpu += times * (t.fwd_cpu + t.bwd_cpu);
    rows_.push_back({{"kind", k}, {"op", where}, {"times", times}, {"out", t.out}, {"fwd_ms", 1e3 * t.fwd},
                     {"bwd_ms", 1e3 * t.bwd}, {"fwd_cpu_ms", 1e3 * t.fwd_cpu}, {"bwd_cpu_ms", 1e3 * t.bwd_cpu}});
    return t.out;
  }
  Tensor input(const fn::Shape& shape, bool grad = true) {
    Tensor x = Tensor::randn(shape, rng_, 1.0, fn::DType::F32, d_);
    x.set_requires_grad(grad);
    return x;
  }
  static std::vector<Tensor> with(std::vector<Tensor> v, const Tensor& x) {
    v.push_back(x);
    return v;
  }
  // The backbones' convolutions: padding kernel / 2, no bias (a batch norm follows), no fused ReLU.
  static fn::nn::Conv2dOptions conv_opts(int kernel, int stride, int groups = 1) {
    fn::nn::Conv2dOptions o;
    o.kernel = kernel, o.stride = stride, o.pad = kernel / 2, o.groups = groups, o.bias = false, o.relu = false;
    return o;
  }
  fn::Shape conv(const std::string& k, const std::string& where, int times, const fn::Shape& in, int out,
                 const fn::nn::Conv2dOptions& o, bool input_grad = true) {
    fn::nn::Conv2d c(int(in[1]), out, rng_, o);
    c.to(d_);
    Tensor x = input(in, input_grad);
    return op(k, where, times, with(c.parameters(), x), [&] { return c(x); });
  }
  // A batch norm in training mode (the batch's statistics, running ones updated), with `act` in the same op.
  fn::Shape bn(const std::string& k, const std::string& where, int times, const fn::Shape& in,
               const fn::F::BatchNormArgs& args, fn::F::BatchNormAct act) {
    fn::nn::BatchNorm2d b(in[1], args);
    b.to(d_);
    Tensor x = input(in);
    return op(k, where, times, with(b.parameters(), x), [&] { return b(x, act); });
  }
  // Both branches' global average pooling of `in`.
  void global_avg_pool(const fn::Shape& in) {
    Tensor x = input(in);
    op("global average pool", "head", 2, {x}, [&] { return fn::F::global_avg_pool2d(x); });
  }
  // The fully connected layers as fashionnet.cpp runs them (with their ReLUs, dropouts and the concat), from the
  // branches' pooled features (`features` each) and the pooled landmarks; the outputs summed into one root (five
  // sums and adds of at most batch x 1024 values, next to the layers' batch x features x 1024 products). Then
  // landmark pooling, the losses and the optimiser from `fashionnet_kernels`.
  void heads(int features, const json& fashionnet_kernels) {
    namespace F = fn::F;
    const fnn::NetConfig& net = s_.cfg.net;
    fn::nn::Linear fc6g(features, net.fc6_global, rng_, 0.01), fc6p(features, net.fc6_pose, rng_, 0.01),
        fc7p(net.fc6_pose, net.fc7_pose, rng_, 0.01), loc(net.fc7_pose, 2 * fnn::kSlots, rng_, 0.01),
        vis(net.fc7_pose, 2 * fnn::kSlots, rng_, 0.01),
        fc6l(fnn::kSlots * s_.model->trunk_channels(), net.fc6_local, rng_, 0.01),
        fc7f(net.fc6_global + net.fc6_local, net.fc7_fusion, rng_, 0.01), cat(net.fc7_fusion, net.categories, rng_, 0.01),
        attr(net.fc7_fusion, std::max(1, net.attributes), rng_, 0.01);
    std::vector<Tensor> leaves;
    for (fn::nn::Linear* l : {&fc6g, &fc6p, &fc7p, &loc, &vis, &fc6l, &fc7f, &cat, &attr}) {
      l->to(d_);
      for (const Tensor& p : l->parameters()) leaves.push_back(p);
    }
    Tensor g = input({batch_, features}), q = input({batch_, features}),
           pooled = input({batch_, fnn::kSlots * s_.model->trunk_channels()});
    leaves.insert(leaves.end(), {g, q, pooled});
    const float p = net.dropout;
    op("fc layers (+ReLU, dropout, concat)", "fc6..heads", 1, leaves, [&] {
      Tensor a = F::dropout(F::relu(fc6g(g)), p, true, 1);
      Tensor c = F::dropout(F::relu(fc7p(F::dropout(F::relu(fc6p(q)), p, true, 2))), p, true, 3);
      Tensor fused = F::concat({a, F::dropout(F::relu(fc6l(pooled)), p, true, 4)}, 1);
      Tensor e = fc7f(fused);
      Tensor hh = F::dropout(F::relu(e), p, true, 5);
      Tensor sum = F::add(F::add(F::sum(loc(c)), F::sum(vis(c))), F::add(F::sum(e), F::sum(cat(hh))));
      return net.attributes > 0 ? F::add(sum, F::sum(attr(hh))) : sum;
    });
    // Wall time only (profile_fashionnet_kernels'), counted as CPU time too: each is under 1% of the step.
    Kind& lp = kind("landmark pool");
    lp.ops = 1, lp.fwd = lp.cpu = kernel_s(fashionnet_kernels, "landmark_pool fwd+bwd");  // fwd + bwd together
    Kind& lo = kind("five losses");
    lo.ops = 5, lo.fwd = lo.cpu = kernel_s(fashionnet_kernels, "five losses fwd+bwd");
    Kind& opt = kind("optimiser (clip + SGD)");
    opt.ops = 2,
    opt.fwd = opt.cpu = kernel_s(fashionnet_kernels, "clip_gradients") + kernel_s(fashionnet_kernels, "sgd step");
  }

  // The whole step again, right after the ops (the machine's load moves from minute to minute): the shares are of
  // its CPU time, which other processes' load disturbs less than wall time. Then the same forward and backward
  // in the graph timed apart (forward with the five losses, then backward). Prints the table under `title`.
  json finish(const std::string& title) {
    std::vector<double> sw, sc, gf, gb;
    for (int r = 0; r <= repeats_; ++r) {
      const double t0 = now_s(), c0 = cpu_s();
      s_.train_step();
      sync(d_);
      if (r > 0) sw.push_back(now_s() - t0), sc.push_back(cpu_s() - c0);
    }
    for (int r = 0; r <= repeats_; ++r) {
      s_.sgd->zero_grad();
      const double t0 = now_s();
      fnn::Outputs o = s_.model->forward(s_.batch.images, fnn::PoolAt{s_.batch.landmarks, s_.batch.visible}, uint64_t(r));
      Tensor total = fnn::fashionnet_loss(o, s_.batch, s_.weights(), s_.train->loss_context()).total;
      sync(d_);
      const double t1 = now_s();
      fn::backward(total);
      sync(d_);
      if (r > 0) gf.push_back(t1 - t0), gb.push_back(now_s() - t1);
    }
    s_.sgd->zero_grad();
    const double step_wall = median(sw), step_cpu = median(sc), graph_fwd = median(gf), graph_bwd = median(gb);

    double sum = 0, sum_cpu = 0, sum_fwd = 0, sum_bwd = 0;
    for (const Kind& k : kinds_) sum += k.fwd + k.bwd, sum_cpu += k.cpu, sum_fwd += k.fwd, sum_bwd += k.bwd;
    std::printf("\n%s op shares (batch %d, %d px; each op alone at the model's shapes, median of %d; the branches' ops\n"
                "twice; landmark pool, losses and optimiser: fwd+bwd together in the fwd column; share: of the step's CPU time)\n",
                title.c_str(), batch_, s_.cfg.net.input, repeats_);
    std::printf("  %-40s %4s %9s %9s %9s %9s %7s\n", "kind", "ops", "fwd ms", "bwd ms", "total ms", "CPU ms", "share");
    json table = json::array();
    for (const Kind& k : kinds_) {
      const double t = k.fwd + k.bwd;
      std::printf("  %-40s %4d %9.1f %9.1f %9.1f %9.1f %6.1f%%\n", k.name.c_str(), k.ops, 1e3 * k.fwd, 1e3 * k.bwd,
                  1e3 * t, 1e3 * k.cpu, 100 * k.cpu / step_cpu);
      table.push_back({{"kind", k.name}, {"ops", k.ops}, {"fwd_ms", 1e3 * k.fwd}, {"bwd_ms", 1e3 * k.bwd},
                       {"total_ms", 1e3 * t}, {"cpu_ms", 1e3 * k.cpu}, {"share_of_step_cpu", k.cpu / step_cpu}});
    }
    const double rest = step_wall - sum, rest_cpu = step_cpu - sum_cpu;
    std::printf("  %-40s %4s %9s %9s %9.1f %9.1f %6.1f%%\n", "rest (step less the above)", "", "", "", 1e3 * rest,
                1e3 * rest_cpu, 100 * rest_cpu / step_cpu);
    std::printf("  %-40s %4s %9s %9s %9.1f %9.1f %6.1f%%\n", "training step (measured after the ops)", "", "", "",
                1e3 * step_wall, 1e3 * step_cpu, 100.0);
    std::printf("  in the graph (median of %d): forward + losses %.1f ms, backward %.1f ms; the ops alone: forward %.1f ms,\n"
                "  backward %.1f ms (landmark pool, losses, optimiser counted as forward); load average now %.2f\n",
                repeats_, 1e3 * graph_fwd, 1e3 * graph_bwd, 1e3 * sum_fwd, 1e3 * sum_bwd, load_average());
    return {{"kinds", table}, {"ops", rows_}, {"sum_ms", 1e3 * sum}, {"sum_cpu_ms", 1e3 * sum_cpu},
            {"rest_ms", 1e3 * rest}, {"rest_cpu_ms", 1e3 * rest_cpu}, {"step_ms", 1e3 * step_wall},
            {"step_cpu_ms", 1e3 * step_cpu}, {"graph_forward_ms", 1e3 * graph_fwd},
            {"graph_backward_ms", 1e3 * graph_bwd}, {"ops_forward_ms", 1e3 * sum_fwd},
            {"ops_backward_ms", 1e3 * sum_bwd}, {"load_average_1min", load_average()}};
  }

  fn::Rng& rng() { return rng_; }

 private:
  struct Kind {
    std::string name;
    int ops = 0;
    double fwd = 0, bwd = 0, cpu = 0;  // cpu: forward + backward
  };
  Kind& kind(const std::string& name) {
    for (Kind& k : kinds_)
      if (k.name == name) return k;
    kinds_.push_back({name});
    return kinds_.back();
  }
  Setup& s_;
  int batch_;
  Device d_;
  int repeats_;
  fn::Rng rng_;
  std::vector<Kind> kinds_;
  json rows_ = json::array();
};

// Lite0 (efficientnet_lite0.cpp): the stem, the MBConv blocks (expand_bn + depthwise + depthwise_bn as one op
// where the block expands), the head conv.
json profile_lite0_ops(Setup& s, int batch, Device d, int repeats, const json& fashionnet_kernels) {
  namespace F = fn::F;
  const fnn::NetConfig& net = s.cfg.net;
  OpProfile p(s, batch, d, repeats,
              {"stem conv 3x3/2", "depthwise conv 3x3", "bn+ReLU6, dw 3x3, bn+ReLU6 (one op)",
               "bn+ReLU6, dw 5x5, bn+ReLU6 (one op)", "1x1 conv: expand", "1x1 conv: project", "1x1 conv: head",
               "batch norm + ReLU6 (one op)", "batch norm (project)", "residual add", "global average pool",
               "landmark pool", "fc layers (+ReLU, dropout, concat)", "five losses", "optimiser (clip + SGD)"});
  auto bn = [&](const std::string& where, int times, const fn::Shape& in, bool relu6) {  // ReLU6 but after projections
    return p.bn(relu6 ? "batch norm + ReLU6 (one op)" : "batch norm (project)", where, times, in, fnn::kLite0Bn,
                relu6 ? F::BatchNormAct::Relu6 : F::BatchNormAct::None);
  };
  // Stem: the image needs no gradient.
  fn::Shape h = {batch, 3, net.input, net.input};
  const std::vector<fnn::MBConvSpec> specs = fnn::lite0_blocks(net.width);
  h = p.conv("stem conv 3x3/2", "stem", 1, h, specs[0].in, OpProfile::conv_opts(3, 2), false);
  bn("stem", 1, h, true);
  for (int i = 0; i < fnn::kLite0Blocks; ++i) {
    const fnn::MBConvSpec& b = specs[size_t(i)];
    const int times = i < fnn::kLite0TrunkBlocks ? 1 : 2;
    const std::string at = "blocks." + std::to_string(i);
    const fn::Shape block_in = h;
    const int mid = b.in * b.expand;
    const std::string kxk = std::to_string(b.kernel) + "x" + std::to_string(b.kernel);
    if (b.expand != 1) {  // expand_bn, the depthwise convolution and depthwise_bn as one op (MBConv)
      h = p.conv("1x1 conv: expand", at, times, h, mid, OpProfile::conv_opts(1, 1));
      fn::nn::BatchNorm2d ebn(mid, fnn::kLite0Bn), dbn(mid, fnn::kLite0Bn);
      fn::nn::Conv2d dw(mid, mid, p.rng(), OpProfile::conv_opts(b.kernel, b.stride, mid));
      ebn.to(d), dbn.to(d), dw.to(d);
      Tensor x = p.input(h);
      std::vector<Tensor> leaves = OpProfile::with(ebn.parameters(), x);
      for (const fn::nn::Module* m : {static_cast<const fn::nn::Module*>(&dw), static_cast<const fn::nn::Module*>(&dbn)})
        for (const Tensor& t : m->parameters()) leaves.push_back(t);
      h = p.op("bn+ReLU6, dw " + kxk + ", bn+ReLU6 (one op)", at, times, leaves,
               [&] { return dw(x, ebn, F::BatchNormAct::Relu6, &dbn, F::BatchNormAct::Relu6); });
    } else {
      h = p.conv("depthwise conv " + kxk, at, times, h, mid, OpProfile::conv_opts(b.kernel, b.stride, mid));
      bn(at + " depthwise", times, h, true);
    }
    h = p.conv("1x1 conv: project", at, times, h, b.out, OpProfile::conv_opts(1, 1));
    bn(at + " project", times, h, false);
    if (b.residual()) {
      Tensor x = p.input(h), r = p.input(block_in);
      p.op("residual add", at, times, {x, r}, [&] { return F::add(x, r); });
    }
  }
  const int head = fnn::scaled_channels(fnn::kLite0HeadChannels, net.width);
  h = p.conv("1x1 conv: head", "head", 2, h, head, OpProfile::conv_opts(1, 1));
  bn("head", 2, h, true);
  p.global_avg_pool(h);
  p.heads(head, fashionnet_kernels);
  return p.finish("Lite0");
}

// ResNet-50 (resnet50.cpp): conv1 + bn1 + ReLU and the max pool, then each bottleneck's convs (1x1 reduce, 3x3
// with the stride, 1x1 expand, and the downsampling shortcut's 1x1), its batch norms (with their ReLU as one op,
// as resnet50.cpp runs them) and the residual add with its ReLU; layer4 twice (one copy a branch).
json profile_resnet50_ops(Setup& s, int batch, Device d, int repeats, const json& fashionnet_kernels) {
  namespace F = fn::F;
  const fnn::NetConfig& net = s.cfg.net;
  OpProfile p(s, batch, d, repeats,
              {"stem conv 7x7/2", "max pool 3x3/2", "1x1 conv: reduce", "3x3 conv", "3x3 conv, stride 2",
               "1x1 conv: expand", "1x1 conv: downsample", "batch norm + ReLU (one op)", "batch norm",
               "residual add + ReLU", "global average pool", "landmark pool", "fc layers (+ReLU, dropout, concat)",
               "five losses", "optimiser (clip + SGD)"});
  const F::BatchNormArgs bn_args{};  // resnet50.h: PyTorch's defaults
  fn::Shape h = {batch, 3, net.input, net.input};
  const int stem = fnn::scaled_channels(fnn::kResNetStemChannels, net.width);
  h = p.conv("stem conv 7x7/2", "conv1", 1, h, stem, OpProfile::conv_opts(7, 2), false);  // the image: no gradient
  p.bn("batch norm + ReLU (one op)", "bn1", 1, h, bn_args, F::BatchNormAct::Relu);
  {
    Tensor x = p.input(h);
    h = p.op("max pool 3x3/2", "maxpool", 1, {x}, [&] { return F::max_pool2d(x, F::Pool2dArgs{3, 2, 1}); });
  }
  int in = int(h[1]);
  for (size_t l = 0; l < fnn::kResNet50Layers.size(); ++l) {
    const fnn::ResNetLayer& layer = fnn::kResNet50Layers[l];
    const int times = l + 1 < fnn::kResNet50Layers.size() ? 1 : 2;  // layer4: conv5_global's and conv5_pose's
    const int w = fnn::scaled_channels(layer.width, net.width);
    for (int bi = 0; bi < layer.blocks; ++bi) {
      const fnn::BottleneckSpec b{in, w, bi == 0 ? layer.stride : 1};
      const std::string at = "layer" + std::to_string(l + 1) + "." + std::to_string(bi);
      const fn::Shape block_in = h;
      h = p.conv("1x1 conv: reduce", at + ".conv1", times, h, b.width, OpProfile::conv_opts(1, 1));
      p.bn("batch norm + ReLU (one op)", at + ".bn1", times, h, bn_args, F::BatchNormAct::Relu);
      h = p.conv(b.stride == 1 ? "3x3 conv" : "3x3 conv, stride 2", at + ".conv2", times, h, b.width,
                 OpProfile::conv_opts(3, b.stride));
      p.bn("batch norm + ReLU (one op)", at + ".bn2", times, h, bn_args, F::BatchNormAct::Relu);
      h = p.conv("1x1 conv: expand", at + ".conv3", times, h, b.out(), OpProfile::conv_opts(1, 1));
      p.bn("batch norm", at + ".bn3", times, h, bn_args, F::BatchNormAct::None);
      if (b.downsample()) {
        const fn::Shape ds = p.conv("1x1 conv: downsample", at + ".downsample.0", times, block_in, b.out(),
                                    OpProfile::conv_opts(1, b.stride));
        p.bn("batch norm", at + ".downsample.1", times, ds, bn_args, F::BatchNormAct::None);
      }
      Tensor x = p.input(h), r = p.input(h);
      p.op("residual add + ReLU", at, times, {x, r}, [&] { return F::relu(F::add(x, r)); });
      in = b.out();
    }
  }
  p.global_avg_pool(h);
  p.heads(in, fashionnet_kernels);
  return p.finish("ResNet-50");
}

// PyTorch's figure from bench/pytorch/train_step.py, run now on the same machine; null if unavailable.
json run_pytorch(const std::string& preset, int batch, int input, int steps, Device d, double clip, int threads) {
  const std::string script = fn::find_source_file("bench/pytorch/train_step.py");
  if (script.empty()) {
    std::printf("pytorch: not available (bench/pytorch/train_step.py not found)\n");
    return nullptr;
  }
  std::string tmp = (std::filesystem::temp_directory_path() / ("bench_train_step_pt_" + std::to_string(::getpid()) + ".json")).string();
  std::string cmd = fn::bench::python_exe() + " " + script + " --preset " + preset + " --batch " + std::to_string(batch) +
                    " --input " + std::to_string(input) +
                    " --steps " + std::to_string(steps) + " --device " + fn::device_name(d) + " --clip " + std::to_string(clip) +
                    (threads > 0 ? " --threads " + std::to_string(threads) : std::string()) + " --json " + tmp;
  std::printf("pytorch: %s\n", cmd.c_str());
  std::fflush(stdout);
  int rc = std::system(cmd.c_str());
  if (rc != 0 || !std::filesystem::exists(tmp)) {
    std::printf("pytorch: not available (the script failed, exit %d)\n", rc);
    return nullptr;
  }
  std::ifstream f(tmp);
  json j = json::parse(f, nullptr, false);
  std::filesystem::remove(tmp);
  if (j.is_discarded()) {
    std::printf("pytorch: not available (unreadable JSON from %s)\n", script.c_str());
    return nullptr;
  }
  return j;
}

// The first number among the keys PyTorch's script may use for training throughput.
double pytorch_train_ips(const json& j) {
  for (const char* k : {"train_images_per_s", "images_per_s", "train_img_per_s"})
    if (j.contains(k) && j[k].is_number()) return j[k].get<double>();
  if (j.contains("train") && j["train"].is_object() && j["train"].contains("images_per_s"))
    return j["train"]["images_per_s"].get<double>();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  fn::kernels::configure_blas(argv);
  CLI::App app{"bench_train_step: FashionNet training step and embedding throughput on a fixed synthetic batch"};
  std::string preset = "cpu-small", device = "cpu", json_path;
  int batch = 0, steps = 10, warmup = 3, threads = 0, input = 0;
  bool pytorch = false, profile = false;
  app.add_option("--preset", preset, "paper | cpu-small | tiny | lite0 | resnet50 | resnet-tiny")->capture_default_str();
  app.add_option("--batch", batch, "images per step (default: the preset's)");
  app.add_option("--input", input, "input side in pixels (default: the preset's; e.g. 224 for lite0 on a GPU)");
  app.add_option("--steps", steps, "timed steps (median)")->capture_default_str();
  app.add_option("--warmup", warmup, "untimed steps first (also the validation length, at least 2)")->capture_default_str();
  app.add_option("--device", device, "cpu | cuda")->capture_default_str();
  app.add_option("--threads", threads, "OpenBLAS/worker threads (default: OpenBLAS's own choice)");
  app.add_option("--json", json_path, "write the results here");
  app.add_flag("--pytorch", pytorch, "also run bench/pytorch/train_step.py now and print the ratio");
  bool no_landmarks = false;
  app.add_flag("--no-landmarks", no_landmarks,
               "a batch without landmark labels (an ImageFolder's photos): the step skips the pose branch and the "
               "local branch pools at no slot, as train makes such a run");
  bool quick = false;
  app.add_flag("--quick", quick, "smoke run: the tiny preset, 2 warm-up and 2 timed steps");
  app.add_flag("--profile", profile,
               "each layer's (VGG16) or op kind's (Lite0, ResNet-50) share of the step, timed at the model's shapes");
  CLI11_PARSE(app, argc, argv);
  if (quick) preset = "tiny", steps = 2, warmup = 2;
  const bool landmarks = !no_landmarks;
  if (no_landmarks && pytorch) {
    std::printf("bench_train_step: --pytorch times the twin with landmarks; run it without --no-landmarks\n");
    return 2;
  }
  if (device == "cuda" && !fn::cuda_available()) {  // no GPU: a skip, recorded, never a figure
    std::printf("SKIPPED: bench_train_step --device cuda: %s\n",
                fn::cuda_compiled() ? "no CUDA device present" : "built without CUDA");
    if (!json_path.empty()) {
      std::ofstream(json_path) << nlohmann::json{{"benchmark", "train_step"}, {"status", "skipped"}}.dump(2) << "\n";
    }
    return 0;
  }

  try {
    const Device d = fn::parse_device(device);
    if (d == Device::CUDA) {
#ifndef FN_WITH_CUDA
      std::printf("bench_train_step: --device cuda, but this build has no CUDA\n");
      return 1;
#endif
    }
    if (threads > 0) fn::kernels::set_blas_threads(threads);
    fnn::TrainConfig cfg = fnn::preset(preset);
    if (input > 0) cfg.net.input = input;
    if (no_landmarks) fnn::keep_no_slot_without_landmarks(cfg.net);  // what train chooses
    FN_CHECK(cfg.stages.size() >= 2, "bench_train_step: preset ", preset, " has fewer than two stages");
    if (batch <= 0) batch = cfg.batch;
    FN_EXPECT(batch % std::max(1, cfg.K) == 0, "--batch ", batch, " is not a multiple of the preset's K = ", cfg.K,
              " (the images of one item come together)");
    FN_EXPECT(steps >= 1, "--steps must be at least 1");
    warmup = std::max(warmup, 2);

    std::printf("bench_train_step: preset %s, batch %d, input %d, device %s, BLAS threads %d (%s kernels), "
                "load %.2f\n", preset.c_str(), batch, cfg.net.input, fn::device_description(d).c_str(),
                fn::kernels::blas_threads(), fn::kernels::blas_kernels().c_str(), load_average());
    // A failed validation is reported in the output and the JSON, and the timing still runs (on a GPU
    // session every figure counts); the exit status is 1 all the same.
    std::string validation = "ok";
    try {
      validate(cfg, batch, d, warmup, landmarks);
    } catch (const std::exception& e) {
      validation = e.what();
      std::printf("validate: FAILED: %s\n", e.what());
    }

    Setup s(cfg, batch, d, landmarks);
    for (int i = 0; i < warmup; ++i) s.train_step();
    sync(d);
    fn::allocator_reset_peak(d);
    std::vector<double> ts, tc;
    for (int i = 0; i < steps; ++i) {
      double t0 = now_s(), c0 = cpu_s();
      s.train_step();
      sync(d);
      ts.push_back(now_s() - t0);
      tc.push_back(cpu_s() - c0);
    }
    const double step_s = median(ts), step_cpu_s = median(tc);
    const size_t train_peak = fn::allocator_stats(d).peak;
    for (int i = 0; i < warmup; ++i) s.embed();
    sync(d);
    fn::allocator_reset_peak(d);
    std::vector<double> te;
    for (int i = 0; i < steps; ++i) {
      double t0 = now_s();
      s.embed();
      sync(d);
      te.push_back(now_s() - t0);
    }
    const double embed_s = median(te);
    const size_t embed_peak = fn::allocator_stats(d).peak;
    const double train_ips = batch / step_s, embed_ips = batch / embed_s;
    std::printf("train: %.1f ms/step (median of %d; min %.1f, max %.1f) = %.1f img/s\n", 1e3 * step_s, steps,
                1e3 * *std::min_element(ts.begin(), ts.end()), 1e3 * *std::max_element(ts.begin(), ts.end()), train_ips);
    std::printf("train: %.1f ms of CPU time per step (all threads, median)\n", 1e3 * step_cpu_s);
    std::printf("embed: %.1f ms/batch = %.1f img/s\n", 1e3 * embed_s, embed_ips);
    std::printf("memory: allocator peak %.1f MB (train), %.1f MB (embed); max RSS %.1f MB\n", train_peak / 1e6,
                embed_peak / 1e6, max_rss_mb());

    char date[32];
    std::time_t tt = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", std::localtime(&tt));
    json out = {{"bench", "train_step"}, {"validation", validation},
                {"commit", fn::build_commit()},
                {"date", date},
                {"machine", {{"device", fn::device_description(d)}, {"hardware_threads", std::thread::hardware_concurrency()},
                             {"blas_threads", fn::kernels::blas_threads()},
                             {"blas_kernels", fn::kernels::blas_kernels()}, {"load_average_1min", load_average()}}},
                {"preset", preset},
                {"landmarks", landmarks},
                {"batch", batch},
                {"input", cfg.net.input},
                {"steps", steps},
                {"warmup", warmup},
                {"train", {{"step_ms_median", 1e3 * step_s}, {"step_cpu_ms_median", 1e3 * step_cpu_s}, {"images_per_s", train_ips}}},
                {"embed", {{"batch_ms_median", 1e3 * embed_s}, {"images_per_s", embed_ips}}},
                {"memory", {{"allocator_peak_train_bytes", train_peak}, {"allocator_peak_embed_bytes", embed_peak},
                            {"max_rss_mb", max_rss_mb()}}}};
    if (profile) {
      const int repeats = std::max(3, steps / 2);
      const fnn::Backbone backbone = cfg.net.backbone;
      out["profile"] = backbone == fnn::Backbone::Vgg16 ? profile_layers(cfg, batch, d, repeats, step_s) : json::object();
      out["profile"]["fashionnet_kernels"] = profile_fashionnet_kernels(s, d, repeats, step_s);
      if (backbone == fnn::Backbone::EfficientNetLite0)
        out["profile"]["lite0_ops"] = profile_lite0_ops(s, batch, d, repeats, out["profile"]["fashionnet_kernels"]);
      else if (backbone == fnn::Backbone::ResNet50)
        out["profile"]["resnet50_ops"] = profile_resnet50_ops(s, batch, d, repeats, out["profile"]["fashionnet_kernels"]);
    }
    if (pytorch) {
      json pt = run_pytorch(preset, batch, cfg.net.input, steps, d, cfg.clip_grad_norm, threads);
      out["pytorch"] = pt;
      double pt_ips = pt.is_null() ? 0 : pytorch_train_ips(pt);
      if (pt_ips > 0) {
        std::printf("pytorch: %.1f img/s training; ours / pytorch = %.2f\n", pt_ips, train_ips / pt_ips);
        out["ratio_train_vs_pytorch"] = train_ips / pt_ips;
        if (d == Device::CUDA && pt.contains("embed_images_per_s") && pt.contains("peak_memory_bytes")) {
          // PyTorch's peak spans its training and embedding runs; ours is the larger of the two.
          const double ours_peak = double(std::max(train_peak, embed_peak)), pt_peak = pt["peak_memory_bytes"].get<double>();
          std::printf("pytorch: embed %.1f img/s; ours / pytorch = %.2f; peak GPU memory ours %.0f MiB, pytorch %.0f MiB "
                      "(ours / pytorch = %.2f)\n",
                      pt["embed_images_per_s"].get<double>(), embed_ips / pt["embed_images_per_s"].get<double>(),
                      ours_peak / 1048576.0, pt_peak / 1048576.0, ours_peak / pt_peak);
          out["ratio_embed_vs_pytorch"] = embed_ips / pt["embed_images_per_s"].get<double>();
          out["ratio_peak_memory_vs_pytorch"] = ours_peak / pt_peak;
        }
      } else {
        out["ratio_train_vs_pytorch"] = nullptr;
      }
    }
    if (!json_path.empty()) {
      std::ofstream f(json_path);
      FN_EXPECT(f.good(), "cannot write ", json_path);
      f << out.dump(2) << "\n";
      std::printf("wrote %s\n", json_path.c_str());
    }
    if (validation != "ok") {  // the figures are out, but the run fails (the smoke test relies on this)
      std::fprintf(stderr, "bench_train_step: validation failed: %s\n", validation.c_str());
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
