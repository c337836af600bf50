#include "fashionnet/model/batch.h"

namespace fn::fashionnet {

BatchTensors to_tensors(const data::Batch& b, const data::Dataset& ds, Device d) {
  BatchTensors t;
  int64_t n = b.n, s = b.input;
  t.n = n;
  t.images = Tensor::from(b.image, {n, 3, s, s}, d);
  t.landmarks = Tensor::from(b.lm_xy, {n, 8, 2}, d);
  t.visible = Tensor::from(b.lm_visible, {n, 8}, d);
  std::vector<float> l01(b.lm_xy.size());
  for (size_t i = 0; i < l01.size(); ++i) l01[i] = b.lm_xy[i] / float(s);
  t.landmarks01 = Tensor::from(l01, {n, 16}, d);
  t.vis_label.assign(size_t(n * 8), -1);
  for (int64_t i = 0; i < n; ++i) {
    const data::Sample& smp = ds.samples[size_t(b.sample_index[size_t(i)])];
    if (!smp.has_landmarks) continue;  // unknown: the visibility loss ignores these slots
    t.has_landmarks = true;
    for (int k = 0; k < 8; ++k) t.vis_label[size_t(i * 8 + k)] = b.lm_visible[size_t(i * 8 + k)] > 0.5f ? 0 : 1;
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

}  // namespace fn::fashionnet
