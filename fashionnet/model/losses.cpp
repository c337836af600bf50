#include "fashionnet/model/losses.h"

#include "kernels/attr_bce.h"
#include "nn/functional.h"
#include "nn/losses.h"

namespace fn::fashionnet {
namespace {
Tensor labels_tensor(const std::vector<int>& v, Device d) {
  std::vector<float> f(v.begin(), v.end());
  return Tensor::from(f, {int64_t(f.size())}, d);
}
bool any_known(const std::vector<int>& v) {
  for (int x : v)
    if (x >= 0) return true;
  return false;
}
bool landmark_term_applies(const BatchTensors& b, const LossWeights& w) { return w.landmarks > 0 && b.has_landmarks; }
bool visibility_term_applies(const BatchTensors& b, const LossWeights& w) {
  return w.visibility > 0 && any_known(b.vis_label);
}
}  // namespace

bool pose_terms_apply(const BatchTensors& b, const LossWeights& w) {
  return landmark_term_applies(b, w) || visibility_term_applies(b, w);
}

LossTerms fashionnet_loss(const Outputs& out, const BatchTensors& b, const LossWeights& w, const LossContext& ctx) {
  LossTerms r;
  Device dev = out.category.device();
  std::vector<std::pair<double, Tensor>> weighted;
  auto add = [&](LossTerm name, double weight, const Tensor& term) {
    weighted.emplace_back(weight, term);
    r.values.emplace_back(kLossTermNames[name], term.item());
  };
  int64_t n = b.n;
  if (landmark_term_applies(b, w))
    add(kTermLandmarks, w.landmarks,
        F::landmark_l2(F::reshape(out.landmark_loc, {n, kSlots, 2}), b.landmarks01.view({n, kSlots, 2}), b.visible));
  if (visibility_term_applies(b, w))
    add(kTermVisibility, w.visibility, F::softmax_cross_entropy(out.landmark_vis, labels_tensor(b.vis_label, dev)));
  if (w.category > 0 && any_known(b.category))
    add(kTermCategory, w.category, F::softmax_cross_entropy(out.category, labels_tensor(b.category, dev), Tensor(), -1,
                                                             ctx.category_smoothing));
  if (w.attributes > 0 && b.attr.defined() && ctx.attr_w_pos.defined() && out.attributes.defined())
    add(kTermAttributes, w.attributes, F::attribute_bce(out.attributes, b.attr, b.attr_known, ctx.attr_w_pos, ctx.attr_w_neg));
  if (w.triplet > 0) {
    F::TripletArgs ta;
    ta.margin = ctx.triplet_margin;
    ta.mode = ctx.triplet_mining;
    F::TripletResult t = F::triplet_loss(F::l2_normalize(out.embedding), labels_tensor(b.item, dev), ta);
    add(kTermTriplet, w.triplet, t.loss);
    r.triplet_active = t.active_fraction.item();
  }
  FN_CHECK(!weighted.empty(), "no loss term applies to this batch (all weights 0 or no labels)");
  Tensor total;
  for (auto& [weight, term] : weighted) {
    Tensor t = weight == 1.0 ? term : F::scale(term, weight);
    total = total.defined() ? F::add(total, t) : t;
  }
  r.total = total;
  return r;
}

void attribute_weights(const data::Dataset& ds, const std::vector<int>& train, int num_attributes, Device d,
                       Tensor& w_pos, Tensor& w_neg) {
  std::vector<int64_t> pos(size_t(num_attributes), 0), neg(size_t(num_attributes), 0);
  for (int i : train) {
    const auto& a = ds.samples[size_t(i)].attributes;
    for (size_t j = 0; j < a.size() && j < pos.size(); ++j) {
      if (a[j] == 1) ++pos[j];
      else if (a[j] == 0) ++neg[j];
    }
  }
  kernels::AttributeWeights aw = kernels::attribute_weights(pos, neg);
  w_pos = Tensor::from(aw.w_pos, {num_attributes}, d);
  w_neg = Tensor::from(aw.w_neg, {num_attributes}, d);
}

}  // namespace fn::fashionnet
