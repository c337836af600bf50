// One plain photo (no annotation) as the network's input: the whole image is the crop, resized to
// input x input and ImageNet-normalised exactly as the training loader does it (data/transform.h), so a
// query photo and a gallery image go through the same pixels-to-tensor path.
#pragma once
#include <string>

#include "core/tensor.h"
#include "data/image_io.h"

namespace fn::fashionnet {

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
