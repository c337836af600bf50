#include "bench/parity/parity_case.h"

#include <cstdio>
#include <filesystem>
#include <map>

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

// `stride`: the trunk map's (FashionNet::trunk_stride), in input pixels per cell.
RandomBatch random_batch(const TrainConfig& cfg, int stride, uint64_t seed) {
  const int N = cfg.P * cfg.K, S = cfg.net.input, A = cfg.net.attributes, L = data::kSlots;
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

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Random biases (they start at 0 otherwise, which would hide a bias bug) and, for every batch norm, a random
// scale and random running statistics (they start at 1 and 0/1, which would hide a mix-up of the two or a
// missing eps in the eval path and make the momentum update trivial to get right).
void randomise(FashionNet& model, uint64_t seed) {
  Rng rng(seed, 0x62696173);  // "bias"
  std::map<std::string, Tensor> params;
  for (auto& [name, p] : model.named_parameters()) {
    params.emplace(name, p);
    if (ends_with(name, ".bias")) p.add_(Tensor::uniform(p.shape(), rng, -0.1, 0.1));
  }
  for (auto& [name, b] : model.named_buffers()) {
    if (ends_with(name, ".running_mean")) b.add_(Tensor::uniform(b.shape(), rng, -0.2, 0.2));
    if (!ends_with(name, ".running_var")) continue;
    b.add_(Tensor::uniform(b.shape(), rng, -0.5, 0.5));  // 0.5 .. 1.5
    auto w = params.find(name.substr(0, name.size() - std::string("running_var").size()) + "weight");
    FN_CHECK(w != params.end(), "parity case: batch norm buffer '", name, "' has no weight beside it");
    w->second.add_(Tensor::uniform(w->second.shape(), rng, -0.5, 0.5));
  }
}

NamedTensors named_outputs(const std::string& prefix, const Outputs& out) {
  return {{prefix + "embedding", out.embedding},       {prefix + "category", out.category},
          {prefix + "attributes", out.attributes},     {prefix + "landmark_loc", out.landmark_loc},
          {prefix + "landmark_vis", out.landmark_vis}};
}

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

  FashionNet model(cfg.net, opt.seed);
  randomise(model, opt.seed);
  // The weights and running statistics before the step: the twin starts from these.
  save_checkpoint(dir + "/model.safetensors", model, nullptr, cfg, TrainState{});
  model.to(opt.device);

  RandomBatch h = random_batch(cfg, model.trunk_stride(), opt.seed);
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
  save_safetensors(dir + "/inputs.safetensors",
                   {{"images", b.images}, {"landmarks", b.landmarks}, {"visible", b.visible},
                    {"landmarks01", b.landmarks01}, {"vis_label", Tensor::from(as_floats(b.vis_label), {N * data::kSlots})},
                    {"category", Tensor::from(as_floats(b.category), {N})}, {"item", Tensor::from(as_floats(b.item), {N})},
                    {"attr", b.attr}, {"attr_known", b.attr_known}, {"w_pos", ctx.attr_w_pos},
                    {"w_neg", ctx.attr_w_neg}},
                   {{"triplet_margin", fmt(cfg.triplet_margin)}, {"triplet_mining", cfg.triplet_mining.name()}});

  ParityCaseSummary sum;
  NamedTensors o = named_outputs("out.", out);
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
  // The running statistics the training forward left (batch norm's momentum update), then the same batch in
  // eval mode, which reads them (pooling at the same given landmarks, so that only the mode differs).
  for (auto& [name, buf] : model.named_buffers()) {
    o.emplace_back("buffer." + name, buf);
    ++sum.buffers;
  }
  model.eval();
  for (auto& t : named_outputs("eval.", model.forward(b.images, PoolAt{b.landmarks, b.visible}))) o.push_back(t);
  save_safetensors(dir + "/outputs.safetensors", o, {{"device", device_name(d)}});
  sum.triplet_active = r.triplet_active;
  return sum;
}

}  // namespace fn::fashionnet
