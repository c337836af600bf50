#include "fashionnet/eval/query_image.h"

#include <vector>

#include "data/transform.h"

namespace fn::fashionnet {

void whole_image_to_chw(const data::Image& img, int input, float* chw) {
  FN_CHECK(img.w > 0 && img.h > 0, "whole_image_to_chw: empty image");
  FN_CHECK(input > 0, "whole_image_to_chw: input size ", input);
  const data::CropRect whole{0, 0, img.w, img.h};
  data::crop_resize_normalize(img, whole, input, /*flip=*/false, chw);
}

QueryImage load_query_image(const std::string& path, int input, Device device) {
  data::Image img = data::decode_image(path);  // throws with the path in the message
  QueryImage q;
  q.width = img.w;
  q.height = img.h;
  std::vector<float> chw(size_t(3) * size_t(input) * size_t(input));
  whole_image_to_chw(img, input, chw.data());
  q.input = Tensor::from(chw, {1, 3, int64_t(input), int64_t(input)}, device);
  return q;
}

}  // namespace fn::fashionnet
