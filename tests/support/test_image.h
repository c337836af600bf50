// Small synthetic RGB images for the image-pipeline tests: image_from(w, h, f) fills pixel (x, y) with
// f(x, y) = {r, g, b}, so a test can read back which source position a pixel came from.
#pragma once
#include <array>
#include <cstdint>

#include "data/image_io.h"

namespace fn::test {

template <class F>
fn::data::Image image_from(int w, int h, F f) {
  fn::data::Image img;
  img.w = w, img.h = h;
  img.rgb.resize((size_t)w * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const std::array<uint8_t, 3> c = f(x, y);
      uint8_t* p = &img.rgb[((size_t)y * w + x) * 3];
      p[0] = c[0], p[1] = c[1], p[2] = c[2];
    }
  return img;
}

}  // namespace fn::test
