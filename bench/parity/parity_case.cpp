#include "bench/parity/parity_case.h"

#include <cstdio>
#include <filesystem>

#include "core/autograd.h"
#include "core/philox.h"
#include "core/safetensors.h"
#include "fashionnet/train/checkpoint.h"
#include "fashionnet/model/losses.h"

namespace fn::fashionnet {
namespace {

std::string fmt(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

// The batch as host vectors first: the landmarks are chosen to hit the pooling rules' edge cases.
struct HostBatch {
  std::vector<float> images, lm, visible, lm01, vis_label, category, item, attr, attr_known, w_pos, w_neg;
};

HostBatch random_batch(const TrainConfig& cfg, uint64_t seed) {
  const int N = cfg.P * cfg.K, S = cfg.net.input, A = cfg.net.attributes, stride = 8;
  Rng rng(seed, 0x70617269);  // "pari"
  auto uni = [&](double lo, double hi) { return float(lo + (hi - lo) * rng.uniform()); };
  HostBatch h;
  for (int64_t i = 0; i < int64_t(N) * 3 * S * S; ++i) h.images.push_back(float(rng.normal()));
  for (int n = 0; n < N; ++n) {
    h.item.push_back(float(10 + 3 * (n % cfg.P)));  // P items, K images each, interleaved in the batch
    h.category.push_back(n == 1 ? -1.f : float(rng.below(cfg.net.categories)));  // one unknown category
    bool annotated = n != N - 1;  // the last image has no landmark annotation: its vis labels are ignored
    for (int s = 0; s < 8; ++s) {
      // Mostly inside the image, some past its border (some of those beyond the map: an empty window).
      float x = uni(-0.15 * S, 1.15 * S), y = uni(-0.15 * S, 1.15 * S);
      if (n == 0 && s == 0) x = 0.5f * stride, y = 1.5f * stride;  // exactly half a cell: rounds up
      if (n == 0 && s == 1) x = float(S - 1), y = 0.f;              // the top-right corner pixel
      if (n == 0 && s == 2) x = -2.f * stride, y = 3.f * S;         // far outside: treated as invisible
      bool vis = annotated && (s < 3 || rng.uniform() < 0.75);
      h.lm.push_back(x);
      h.lm.push_back(y);
      h.lm01.push_back(x / float(S));
      h.lm01.push_back(y / float(S));
      h.visible.push_back(vis ? 1.f : 0.f);
      h.vis_label.push_back(annotated ? (vis ? 0.f : 1.f) : -1.f);
    }
    for (int a = 0; a < A; ++a) {
      h.attr.push_back(rng.uniform() < 0.3 ? 1.f : 0.f);
      h.attr_known.push_back(rng.uniform() < 0.7 ? 1.f : 0.f);
    }
  }
  for (int a = 0; a < A; ++a) {
    h.w_pos.push_back(uni(0.5, 3.0));
    h.w_neg.push_back(uni(0.5, 3.0));
  }
  return h;
}

}  // namespace

ParityCaseSummary write_parity_case(const std::string& dir, const ParityCaseOptions& opt) {
  TrainConfig cfg = opt.cfg;
  cfg.net.dropout = 0.f;  // masks cannot match across implementations
  cfg.seed = opt.seed;
  cfg.batch = cfg.P * cfg.K;
  const int64_t N = cfg.batch, S = cfg.net.input, A = cfg.net.attributes;
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

  HostBatch h = random_batch(cfg, opt.seed);
  Device d = opt.device;
  BatchTensors b;
  b.n = N;
  b.images = Tensor::from(h.images, {N, 3, S, S}, d);
  b.landmarks = Tensor::from(h.lm, {N, 8, 2}, d);
  b.visible = Tensor::from(h.visible, {N, 8}, d);
  b.landmarks01 = Tensor::from(h.lm01, {N, 16}, d);
  b.vis_label.assign(h.vis_label.begin(), h.vis_label.end());
  b.category.assign(h.category.begin(), h.category.end());
  b.item.assign(h.item.begin(), h.item.end());
  b.attr = Tensor::from(h.attr, {N, A}, d);
  b.attr_known = Tensor::from(h.attr_known, {N, A}, d);
  b.has_landmarks = true;
  LossContext ctx;
  ctx.attr_w_pos = Tensor::from(h.w_pos, {A}, d);
  ctx.attr_w_neg = Tensor::from(h.w_neg, {A}, d);
  ctx.triplet_margin = cfg.triplet_margin;
  ctx.triplet_mining = cfg.triplet_mining;

  // The training path (dropout p = 0), all five weights 1, one backward.
  model.zero_grad();
  Outputs out = model.forward(b.images, PoolAt{b.landmarks, b.visible}, /*training=*/true, 0);
  LossTerms terms = fashionnet_loss(out, b, LossWeights{1, 1, 1, 1, 1}, ctx);
  FN_CHECK(terms.values.size() == 5, "parity case: expected all five loss terms active, got ", terms.values.size());
  backward(terms.total);

  save_checkpoint(dir + "/model.safetensors", model, nullptr, cfg, TrainState{});
  save_safetensors(dir + "/inputs.safetensors",
                   {{"images", b.images}, {"landmarks", b.landmarks}, {"visible", b.visible},
                    {"landmarks01", b.landmarks01}, {"vis_label", Tensor::from(h.vis_label, {N * 8})},
                    {"category", Tensor::from(h.category, {N})}, {"item", Tensor::from(h.item, {N})},
                    {"attr", b.attr}, {"attr_known", b.attr_known}, {"w_pos", ctx.attr_w_pos},
                    {"w_neg", ctx.attr_w_neg}},
                   {{"triplet_margin", fmt(cfg.triplet_margin)}, {"triplet_mining", cfg.triplet_mining}});

  ParityCaseSummary sum;
  NamedTensors o = {{"out.embedding", out.embedding},       {"out.category", out.category},
                    {"out.attributes", out.attributes},     {"out.landmark_loc", out.landmark_loc},
                    {"out.landmark_vis", out.landmark_vis}};
  for (auto& [name, v] : terms.values) {
    o.emplace_back("loss." + name, Tensor::from(std::vector<double>{v}, {}));
    sum.losses.emplace_back(name, v);
  }
  double total = terms.total.item();
  o.emplace_back("loss.total", Tensor::from(std::vector<double>{total}, {}));
  sum.losses.emplace_back("total", total);
  for (auto& [name, p] : model.named_parameters()) {
    FN_CHECK(p.grad().defined(), "parity case: parameter '", name, "' received no gradient");
    o.emplace_back("grad." + name, p.grad());
    sum.parameters += p.numel();
  }
  save_safetensors(dir + "/outputs.safetensors", o, {{"device", device_name(d)}});
  sum.triplet_active = terms.triplet_active;
  return sum;
}

}  // namespace fn::fashionnet
