#include "fashionnet/model/batch.h"

namespace fn::fashionnet {

BatchTensors to_tensors(const data::Batch& b, const std::vector<uint8_t>& annotated, Device d) {
  constexpr int64_t L = data::kSlots;
  BatchTensors t;
  int64_t n = b.n, s = b.input;
  FN_CHECK(int64_t(annotated.size()) == n, "to_tensors: ", annotated.size(), " annotation flags for ", n, " images");
  t.n = n;
  t.images = Tensor::from(b.image, {n, 3, s, s}, d);
  t.landmarks = Tensor::from(b.lm_xy, {n, L, 2}, d);
  t.visible = Tensor::from(b.lm_visible, {n, L}, d);
  std::vector<float> l01(b.lm_xy.size());
  for (size_t i = 0; i < l01.size(); ++i) l01[i] = b.lm_xy[i] / float(s);
  t.landmarks01 = Tensor::from(l01, {n, 2 * L}, d);
  t.vis_label.assign(size_t(n * L), -1);
  for (int64_t i = 0; i < n; ++i) {
    if (!annotated[size_t(i)]) continue;  // unknown: the visibility loss ignores these slots
    t.has_landmarks = true;
    for (int64_t k = 0; k < L; ++k) t.vis_label[size_t(i * L + k)] = b.lm_visible[size_t(i * L + k)] > 0.5f ? 0 : 1;
  }
  t.category = b.category;
  t.item = b.item;
  int64_t a = n ? int64_t(b.attr.size()) / n : 0;
  if (a > 0) {
    t.attr = Tensor::from(b.attr, {n, a}, d);
    t.attr_known = Tensor::from(b.attr_known, {n, a}, d);
  }
  return t;
}

BatchTensors to_tensors(const data::Batch& b, const data::Dataset& ds, Device d) {
  std::vector<uint8_t> annotated(size_t(b.n));
  for (int64_t i = 0; i < b.n; ++i) annotated[size_t(i)] = ds.samples[size_t(b.sample_index[size_t(i)])].has_landmarks;
  return to_tensors(b, annotated, d);
}

BatchTensors slice_rows(const BatchTensors& b, int64_t begin, int64_t end) {
  FN_CHECK(0 <= begin && begin < end && end <= b.n, "slice_rows: rows [", begin, ", ", end, ") of ", b.n);
  constexpr int64_t L = data::kSlots;
  auto rows = [&](const Tensor& t) { return t.defined() ? t.slice0(begin, end) : t; };
  BatchTensors s;
  s.n = end - begin;
  s.images = rows(b.images);
  s.landmarks = rows(b.landmarks);
  s.visible = rows(b.visible);
  s.landmarks01 = rows(b.landmarks01);
  s.vis_label.assign(b.vis_label.begin() + begin * L, b.vis_label.begin() + end * L);
  for (int v : s.vis_label) s.has_landmarks |= v >= 0;
  s.category.assign(b.category.begin() + begin, b.category.begin() + end);
  s.item.assign(b.item.begin() + begin, b.item.begin() + end);
  s.attr = rows(b.attr);
  s.attr_known = rows(b.attr_known);
  return s;
}

BatchTensors to_device(const BatchTensors& b, Device d) {
  BatchTensors m = b;
  for (Tensor* t : {&m.images, &m.landmarks, &m.visible, &m.landmarks01, &m.attr, &m.attr_known})
    if (t->defined()) *t = t->to(d);
  return m;
}

}  // namespace fn::fashionnet
