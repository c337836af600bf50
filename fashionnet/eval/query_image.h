// One plain photo as the network's input: the whole image is the crop, or the garment's box when the user
// gives one, resized to input x input and ImageNet-normalised exactly as the training loader does it
// (data/transform.h), so a query photo and a gallery image go through the same pixels-to-tensor path.
#pragma once
#include <optional>
#include <string>

#include "core/tensor.h"
#include "data/image_io.h"
#include "data/transform.h"

namespace fn::fashionnet {

// A garment's box in a photo, in source pixels, [x1, x2) x [y1, y2): DeepFashion's list_bbox convention.
struct PhotoBox {
  int x1 = 0, y1 = 0, x2 = 0, y2 = 0;
};

// The rectangle of a photo the network sees: the whole photo without a box; with one, the box widened by
// `margin` times its size on each side and clipped, the training loader's rule (data::crop_rect), so that a
// boxed query matches a gallery embedded from the dataset's boxes. A box reaching outside the photo throws
// naming `path`.
data::CropRect photo_crop(const std::string& path, int width, int height, const std::optional<PhotoBox>& box,
                          float margin);

// A point the network predicts in input coordinates (`loc` in [0, 1], pixel centres at loc * input) as a
// fraction of the photo's width (or height): `crop_origin` and `crop_size` are the crop's x0 and w (y0 and
// h) along that axis, `photo_size` the photo's width (height). The inverse of data::InputMap.
float input_to_photo_fraction(float loc, int input, int crop_origin, int crop_size, int photo_size);

struct QueryImage {
  Tensor input;      // (1, 3, S, S) float32 on the requested device
  int width = 0;     // the source photo's size in pixels (to draw predicted landmarks over it)
  int height = 0;
};

// Writes the whole-image crop of `img`, resized to `input` and normalised, as planar CHW floats to `chw`
// (3 * input * input values).
void whole_image_to_chw(const data::Image& img, int input, float* chw);

// Decodes `path` (JPEG or PNG) and prepares it. A missing or corrupt file throws fn::Error naming it.
QueryImage load_query_image(const std::string& path, int input, Device device = Device::CPU);

}  // namespace fn::fashionnet
