// Mirror-averaged inference (see mirror.h).
#include "fashionnet/eval/mirror.h"

#include "core/error.h"

namespace fn::fashionnet {

HostOutputs forward_to_host(const FashionNet& model, const Tensor& images, const PoolAt& at) {
  const Outputs o = model.forward(images, at);
  HostOutputs h;
  h.n = images.size(0);
  h.embedding = o.embedding.to_vector();
  h.category = o.category.to_vector();
  if (o.attributes.defined()) h.attributes = o.attributes.to_vector();
  h.landmark_loc = o.landmark_loc.to_vector();
  h.landmark_vis = o.landmark_vis.to_vector();
  return h;
}

void average_with_mirrored(HostOutputs& o, const HostOutputs& m, int input) {
  FN_CHECK(o.n == m.n && o.embedding.size() == m.embedding.size() && o.category.size() == m.category.size() &&
               o.attributes.size() == m.attributes.size() && o.landmark_loc.size() == m.landmark_loc.size() &&
               o.landmark_vis.size() == m.landmark_vis.size() &&
               o.landmark_loc.size() == size_t(o.n) * data::kSlots * 2 && o.landmark_vis.size() == o.landmark_loc.size(),
           "average_with_mirrored: the two passes' outputs differ in shape");
  auto mean = [](std::vector<float>& a, const std::vector<float>& b) {
    for (size_t i = 0; i < a.size(); ++i) a[i] = 0.5f * (a[i] + b[i]);
  };
  mean(o.embedding, m.embedding);  // a global descriptor: nothing to map back
  mean(o.category, m.category);
  mean(o.attributes, m.attributes);
  const float far = float(input - 1) / float(input);
  for (int64_t i = 0; i < o.n; ++i)
    for (int s = 0; s < data::kSlots; ++s) {
      const size_t d = size_t(i * data::kSlots + s) * 2, src = size_t(i * data::kSlots + data::mirror_slot(s)) * 2;
      o.landmark_loc[d] = 0.5f * (o.landmark_loc[d] + (far - m.landmark_loc[src]));
      o.landmark_loc[d + 1] = 0.5f * (o.landmark_loc[d + 1] + m.landmark_loc[src + 1]);
      o.landmark_vis[d] = 0.5f * (o.landmark_vis[d] + m.landmark_vis[src]);
      o.landmark_vis[d + 1] = 0.5f * (o.landmark_vis[d + 1] + m.landmark_vis[src + 1]);
    }
}

}  // namespace fn::fashionnet
