#include "fashionnet/eval/query_image.h"

#include <vector>

#include "data/transform.h"

namespace fn::fashionnet {

data::CropRect photo_crop(const std::string& path, int width, int height, const std::optional<PhotoBox>& box,
                          float margin) {
  if (!box) return {0, 0, width, height};
  // crop_rect's own check refuses a box past the photo's edge, naming `path`; parse_box and the box file have
  // refused empty boxes and negative corners.
  data::Sample s;
  s.image = path;
  s.has_bbox = true;
  s.x1 = box->x1, s.y1 = box->y1, s.x2 = box->x2, s.y2 = box->y2;
  return data::crop_rect(s, width, height, margin);
}

float input_to_photo_fraction(float loc, int input, int crop_origin, int crop_size, int photo_size) {
  // InputMap: u = (x - x0 + 0.5) * input / w - 0.5 with u = loc * input; the pixel centre x covers
  // [x - 0.5, x + 0.5], so its fraction of the photo is (x + 0.5) / photo_size.
  const float x = (loc * float(input) + 0.5f) * float(crop_size) / float(input) + float(crop_origin) - 0.5f;
  return (x + 0.5f) / float(photo_size);
}

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
