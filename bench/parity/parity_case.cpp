#include "bench/parity/parity_case.h"

#include <cstdio>
#include <filesystem>

#include "core/philox.h"
#include "core/safetensors.h"
#include "data/loader.h"
#include "fashionnet/model/batch.h"
#include "fashionnet/model/losses.h"
#include "fashionnet/train/checkpoint.h"
#include "fashionnet/train/step.h"

namespace fn::fashionnet {
namespace {

std::string fmt(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

// The batch as a data::Batch (then to_tensors, as the trainer's batches): the landmarks are chosen to hit the
// pooling rules' edge cases. The last image has no landmark annotation; w_pos and w_neg are the attribute
// weights.
struct RandomBatch {
  data::Batch batch;
  std::vector<uint8_t> annotated;
  std::vector<float> w_pos, w_neg;
};

RandomBatch random_batch(const TrainConfig& cfg, uint64_t seed) {
  const int N = cfg.P * cfg.K, S = cfg.net.input, A = cfg.net.attributes, stride = 8, L = data::kSlots;
  Rng rng(seed, 0x70617269);  // "pari"
  auto uni = [&](double lo, double hi) { return float(lo + (hi - lo) * rng.uniform()); };
  RandomBatch r;
  data::Batch& b = r.batch;
  data::resize_batch(b, N, S, size_t(A));
  for (float& v : b.image) v = float(rng.normal());
  for (int n = 0; n < N; ++n) {
    b.item[size_t(n)] = 10 + 3 * (n % cfg.P);  // P items, K images each, interleaved in the batch
    b.category[size_t(n)] = n == 1 ? -1 : int(rng.below(cfg.net.categories));  // one unknown category
    bool annotated = n != N - 1;  // the last image has no landmark annotation: its vis labels are ignored
    r.annotated.push_back(annotated);
    for (int s = 0; s < L; ++s) {
      // Mostly inside the image, some past its border (some of those beyond the map: an empty window).
      float x = uni(-0.15 * S, 1.15 * S), y = uni(-0.15 * S, 1.15 * S);
      if (n == 0 && s == 0) x = 0.5f * stride, y = 1.5f * stride;  // exactly half a cell: rounds up
      if (n == 0 && s == 1) x = float(S - 1), y = 0.f;              // the top-right corner pixel
      if (n == 0 && s == 2) x = -2.f * stride, y = 3.f * S;         // far outside: treated as invisible
      bool vis = annotated && (s < 3 || rng.uniform() < 0.75);
      b.lm_xy[size_t((n * L + s) * 2)] = x;
      b.lm_xy[size_t((n * L + s) * 2 + 1)] = y;
      b.lm_visible[size_t(n * L + s)] = vis ? 1.f : 0.f;
    }
    for (int a = 0; a < A; ++a) {
      b.attr[size_t(n * A + a)] = rng.uniform() < 0.3 ? 1.f : 0.f;
      b.attr_known[size_t(n * A + a)] = rng.uniform() < 0.7 ? 1.f : 0.f;
    }
  }
  for (int a = 0; a < A; ++a) {
    r.w_pos.push_back(uni(0.5, 3.0));
    r.w_neg.push_back(uni(0.5, 3.0));
  }
  return r;
}

std::vector<float> as_floats(const std::vector<int>& v) { return std::vector<float>(v.begin(), v.end()); }

}  // namespace

ParityCaseSummary write_parity_case(const std::string& dir, const ParityCaseOptions& opt) {
  TrainConfig cfg = opt.cfg;
  cfg.net.dropout = 0.f;  // masks cannot match across implementations
  cfg.seed = opt.seed;
  cfg.batch = cfg.P * cfg.K;
  const int64_t N = cfg.batch, A = cfg.net.attributes;
  FN_CHECK(cfg.P >= 2 && cfg.K >= 2, "parity case: P and K must be at least 2 for the triplet loss, got P=", cfg.P,
           " K=", cfg.K);
  FN_CHECK(A > 0, "parity case: the network must have attributes (got attributes = ", A, ")");
  std::filesystem::create_directories(dir);

  // Random weights; the biases too (they start at 0 otherwise, which would hide a bias bug).
  FashionNet model(cfg.net, opt.seed);
  Rng rng(opt.seed, 0x62696173);  // "bias"
  for (auto& [name, p] : model.named_parameters())
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0)
      p.add_(Tensor::uniform(p.shape(), rng, -0.1, 0.1));
  model.to(opt.device);

  RandomBatch h = random_batch(cfg, opt.seed);
  Device d = opt.device;
  BatchTensors b = to_tensors(h.batch, h.annotated, d);
  LossContext ctx = loss_context(cfg);
  ctx.attr_w_pos = Tensor::from(h.w_pos, {A}, d);
  ctx.attr_w_neg = Tensor::from(h.w_neg, {A}, d);

  // The training step's forward and backward (dropout p = 0), all five weights 1; no optimizer step.
  model.zero_grad();
  TrainStep step(model, /*optimizer=*/nullptr, ctx);
  StepResult r = step.forward_backward(b, LossWeights{1, 1, 1, 1, 1}, 0, "parity case");
  FN_CHECK(r.terms.size() == 5, "parity case: expected all five loss terms active, got ", r.terms.size());
  const Outputs& out = r.outputs;

  save_checkpoint(dir + "/model.safetensors", model, nullptr, cfg, TrainState{});
  save_safetensors(dir + "/inputs.safetensors",
                   {{"images", b.images}, {"landmarks", b.landmarks}, {"visible", b.visible},
                    {"landmarks01", b.landmarks01}, {"vis_label", Tensor::from(as_floats(b.vis_label), {N * data::kSlots})},
                    {"category", Tensor::from(as_floats(b.category), {N})}, {"item", Tensor::from(as_floats(b.item), {N})},
                    {"attr", b.attr}, {"attr_known", b.attr_known}, {"w_pos", ctx.attr_w_pos},
                    {"w_neg", ctx.attr_w_neg}},
                   {{"triplet_margin", fmt(cfg.triplet_margin)}, {"triplet_mining", cfg.triplet_mining.name()}});

  ParityCaseSummary sum;
  NamedTensors o = {{"out.embedding", out.embedding},       {"out.category", out.category},
                    {"out.attributes", out.attributes},     {"out.landmark_loc", out.landmark_loc},
                    {"out.landmark_vis", out.landmark_vis}};
  for (auto& [name, v] : r.terms) {
    o.emplace_back("loss." + name, Tensor::from(std::vector<double>{v}, {}));
    sum.losses.emplace_back(name, v);
  }
  double total = r.total;
  o.emplace_back("loss.total", Tensor::from(std::vector<double>{total}, {}));
  sum.losses.emplace_back("total", total);
  for (auto& [name, p] : model.named_parameters()) {
    FN_CHECK(p.grad().defined(), "parity case: parameter '", name, "' received no gradient");
    o.emplace_back("grad." + name, p.grad());
    sum.parameters += p.numel();
  }
  save_safetensors(dir + "/outputs.safetensors", o, {{"device", device_name(d)}});
  sum.triplet_active = r.triplet_active;
  return sum;
}

}  // namespace fn::fashionnet
