#include "fashionnet/model/fashionnet.h"

#include <cmath>

#include "core/autograd.h"
#include "fashionnet/model/backbone.h"
#include "nn/landmark_pool.h"
#include "nn/losses.h"

namespace fn::fashionnet {
namespace {
// Heads that feed a loss directly start small; hidden layers followed by ReLU use Kaiming.
double kaiming(int fan_in) { return std::sqrt(2.0 / fan_in); }
constexpr double kHeadStd = 0.01;

// Every dropout layer gets its own mask stream per step.
uint64_t dropout_seed(uint64_t step, uint64_t layer) { return (step + 1) * 0x9E3779B97F4A7C15ull ^ (layer << 56); }
}  // namespace

FashionNet::FashionNet(const NetConfig& cfg, uint64_t seed) : cfg_(cfg) {
  check_config(cfg, "FashionNet");
  Rng rng(seed, 0x6e6574);  // "net"
  BackboneParts backbone = make_backbone(cfg, rng);
  trunk_ = &add_module("trunk", std::move(backbone.trunk));
  conv5_global_ = &add_module("conv5_global", std::move(backbone.global));
  conv5_pose_ = &add_module("conv5_pose", std::move(backbone.pose));
  const int flat5 = conv5_global_->features, local_in = kSlots * trunk_->channels;
  auto linear = [&](const char* name, int in, int out, double std) {
    return &add_module(name, std::make_unique<nn::Linear>(in, out, rng, std));
  };
  fc6_global_ = linear("fc6_global", flat5, cfg.fc6_global, kaiming(flat5));
  fc6_pose_ = linear("fc6_pose", flat5, cfg.fc6_pose, kaiming(flat5));
  fc7_pose_ = linear("fc7_pose", cfg.fc6_pose, cfg.fc7_pose, kaiming(cfg.fc6_pose));
  landmark_loc_ = linear("landmark_loc", cfg.fc7_pose, 2 * kSlots, kHeadStd);
  landmark_loc_->bias.fill_(0.5);  // start every landmark at the image centre: a small first L2 loss
  landmark_vis_ = linear("landmark_vis", cfg.fc7_pose, 2 * kSlots, kHeadStd);
  int fusion_in = cfg.fc6_global;
  if (cfg.local_branch) {
    fc6_local_ = linear("fc6_local", local_in, cfg.fc6_local, kaiming(local_in));
    fusion_in += cfg.fc6_local;
  }
  fc7_fusion_ = linear("fc7_fusion", fusion_in, cfg.fc7_fusion, kaiming(fusion_in));
  category_ = linear("category", cfg.fc7_fusion, cfg.categories, kHeadStd);
  if (cfg.attributes > 0) attributes_ = linear("attributes", cfg.fc7_fusion, cfg.attributes, kHeadStd);
}

int FashionNet::trunk_stride() const { return trunk_->stride; }
int FashionNet::trunk_channels() const { return trunk_->channels; }

Tensor FashionNet::local_features(const Tensor& map, const PoolAt& at) const {
  kernels::LandmarkPoolArgs args;
  args.stride = trunk_stride();  // landmarks are in input pixels; the map's cells are `stride` pixels apart
  args.radius = cfg_.pool_radius;
  args.mode = cfg_.pool_mode;
  Tensor pooled = F::landmark_pool(map, at.landmarks, at.visibility, args);  // (N, kSlots*C)
  if (cfg_.local_scale != 1.f) pooled = F::scale(pooled, double(cfg_.local_scale));
  return F::relu((*fc6_local_)(pooled));
}

Outputs FashionNet::forward(const Tensor& images, const PoolAt& pool_at, uint64_t step, int64_t first_sample,
                            bool pose) const {
  FN_CHECK(images.ndim() == 4 && images.size(1) == 3 && images.size(2) == cfg_.input && images.size(3) == cfg_.input,
           "FashionNet expects images (N, 3, ", cfg_.input, ", ", cfg_.input, "), got ", images.describe());
  Outputs o;
  int64_t n = images.size(0);
  float p = cfg_.dropout;
  const bool training = is_training();  // dropout follows the mode (batch norm reads it in its layers)
  // Dropout on a (N, F) activation; element (i, j) draws its mask at (first_sample + i) * F + j.
  auto dropout = [&](const Tensor& x, uint64_t layer) {
    return F::dropout(x, p, training, dropout_seed(step, layer), first_sample * x.size(1));
  };
  o.conv4 = (*trunk_)(images);
  // With given positions (training, or a fixed rule: layout, absent), the local branch is recorded before the
  // branches' first op (VGG16: pool4), so that its backward runs after theirs: landmark_pool then adds its
  // sparse gradient into the trunk map's gradient instead of a dense copy.
  const bool fixed = cfg_.local_branch && cfg_.local_at != LocalAt::Landmarks;
  const bool local_first = fixed || (cfg_.local_branch && pool_at.landmarks.defined());
  if (local_first) o.fc6_local_act = local_features(o.conv4, fixed ? fixed_pool_at(n, images.device()) : pool_at);
  FN_CHECK(pose || local_first || !cfg_.local_branch,
           "FashionNet::forward: the pose branch skipped, but the local branch pools at its predicted landmarks");
  Tensor branch_in = trunk_->branch_input(o.conv4);  // VGG16: pool4

  // Global branch.
  Tensor g = (*conv5_global_)(branch_in);  // (N, features)
  o.fc6_global_act = F::relu((*fc6_global_)(g));
  Tensor fc6_global = dropout(o.fc6_global_act, 2);

  // Pose branch: landmark locations in [0,1] and visibility logits.
  if (pose) {
    Tensor q = (*conv5_pose_)(branch_in);
    Tensor fc6_pose = dropout(F::relu((*fc6_pose_)(q)), 3);
    Tensor fc7_pose = dropout(F::relu((*fc7_pose_)(fc6_pose)), 4);
    o.landmark_loc = (*landmark_loc_)(fc7_pose);
    o.landmark_vis = F::reshape((*landmark_vis_)(fc7_pose), {n * kSlots, 2});
  }

  // Local branch at the predicted landmarks when none are given (evaluation).
  Tensor fused = fc6_global;
  if (cfg_.local_branch) {
    if (!local_first) o.fc6_local_act = local_features(o.conv4, predicted_pool_at(o));
    fused = F::concat({fc6_global, dropout(o.fc6_local_act, 1)}, 1);
  }

  // Fusion and heads.
  // The retrieval embedding is fc7_fusion before its ReLU: after it, units that die take whole
  // directions with them and the L2-normalised embeddings can collapse onto each other, which leaves the
  // triplet loss stuck at the margin with no gradient.
  o.embedding = (*fc7_fusion_)(fused);
  Tensor h = dropout(F::relu(o.embedding), 5);
  o.category = (*category_)(h);
  if (attributes_) o.attributes = (*attributes_)(h);
  return o;
}

double dead_fraction(const Tensor& act) {
  FN_CHECK(act.ndim() == 2 && act.size(1) > 0, "dead_fraction: (N, units) expected, got ", act.describe());
  std::vector<double> v = act.to_vector_f64();
  const int64_t n = act.size(0), u = act.size(1);
  int64_t dead = 0;
  for (int64_t j = 0; j < u; ++j) {
    bool zero = true;
    for (int64_t i = 0; i < n && zero; ++i) zero = v[size_t(i * u + j)] == 0.0;
    dead += zero;
  }
  return double(dead) / double(u);
}

PoolAt FashionNet::predicted_pool_at(const Outputs& o) const {
  NoGradGuard no_grad;  // the pooling positions are data, not a path for gradients
  int64_t n = o.landmark_loc.size(0);
  PoolAt at;
  at.landmarks = F::scale(o.landmark_loc, double(cfg_.input)).view({n, kSlots, 2});
  at.visibility = Tensor::from(visible_from_logits(o.landmark_vis.to_vector()), {n, kSlots}, o.landmark_loc.device());
  return at;
}

PoolAt FashionNet::layout_pool_at(int64_t n, Device device) const {
  // Pixel-centre coordinates (data/transform.h): times S - 1, so that the layout stays exactly symmetric in pixels.
  const float span = float(cfg_.input - 1);
  std::vector<float> xy(size_t(n * kSlots * 2));
  for (size_t i = 0; i < xy.size(); ++i) xy[i] = kGarmentLayout[(i / 2) % kSlots][i % 2] * span;
  PoolAt at;
  at.landmarks = Tensor::from(xy, {n, kSlots, 2}, device);
  at.visibility = Tensor::from(std::vector<float>(size_t(n * kSlots), 1.f), {n, kSlots}, device);
  return at;
}

PoolAt FashionNet::fixed_pool_at(int64_t n, Device device) const {
  if (cfg_.local_at == LocalAt::Layout) return layout_pool_at(n, device);
  if (cfg_.local_at != LocalAt::Absent) return PoolAt{};
  PoolAt at;  // what images without landmarks give in training (data/loader.h): every slot at (0, 0), invisible
  at.landmarks = Tensor::zeros({n, kSlots, 2}, DType::F32, device);
  at.visibility = Tensor::zeros({n, kSlots}, DType::F32, device);
  return at;
}

std::vector<float> visible_from_logits(const std::vector<float>& logits) {
  FN_CHECK(logits.size() % 2 == 0, "visible_from_logits: ", logits.size(), " logits, not (visible, not visible) pairs");
  std::vector<float> vis(logits.size() / 2);  // the host does it: N*kSlots values
  for (size_t i = 0; i < vis.size(); ++i) vis[i] = logits[2 * i] >= logits[2 * i + 1] ? 1.f : 0.f;
  return vis;
}

}  // namespace fn::fashionnet
