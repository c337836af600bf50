#include "data/transform.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace fn::data {

CropRect crop_rect(const Sample& s, int img_w, int img_h, float margin) {
  if (!s.has_bbox) return {0, 0, img_w, img_h};
  if (s.x2 > img_w || s.y2 > img_h)
    FN_USER_FAIL(s.image, ": bbox (", s.x1, ", ", s.y1, ", ", s.x2, ", ", s.y2, ") is outside the ", img_w, "x", img_h,
                 " image");
  // Rounded outwards to whole pixels; the small epsilon keeps 0.1f * 100 from becoming 11 pixels.
  const double mx = margin * (s.x2 - s.x1), my = margin * (s.y2 - s.y1), eps = 1e-3;
  const int x0 = std::max(0, (int)std::floor(s.x1 - mx + eps)), y0 = std::max(0, (int)std::floor(s.y1 - my + eps));
  const int x1 = std::min(img_w, (int)std::ceil(s.x2 + mx - eps)), y1 = std::min(img_h, (int)std::ceil(s.y2 + my - eps));
  return {x0, y0, x1 - x0, y1 - y0};
}

CropRect random_crop(const CropRect& r, const Augment& a) {
  const double ratio = std::exp((double)a.log_ratio);
  const int w = std::clamp((int)std::lround(r.w * std::sqrt(a.area * ratio)), 1, r.w);
  const int h = std::clamp((int)std::lround(r.h * std::sqrt(a.area / ratio)), 1, r.h);
  const int x0 = r.x0 + std::min(r.w - w, (int)std::floor(a.fx * (r.w - w + 1)));
  const int y0 = r.y0 + std::min(r.h - h, (int)std::floor(a.fy * (r.h - h + 1)));
  return {x0, y0, w, h};
}

InputMap input_map(const CropRect& r, int input, bool flip) {
  InputMap m;
  m.x0 = (float)r.x0;
  m.y0 = (float)r.y0;
  m.sx = (float)input / (float)r.w;
  m.sy = (float)input / (float)r.h;
  m.input = input;
  m.flip = flip;
  return m;
}

void transform_landmarks(const Landmarks& lm, const InputMap& m, float* xy, uint8_t* vis) {
  const float lo = -0.5f, hi = (float)m.input - 0.5f;  // the input's extent in pixel-centre coordinates
  for (int s = 0; s < kSlots; ++s) {
    const int d = m.flip ? mirror_slot(s) : s;
    uint8_t v = lm.vis[s];
    float x = 0, y = 0;
    if (v != kAbsent) {
      m.map(lm.x[s], lm.y[s], x, y);
      if (v == kVisible || v == kOccluded)
        if (x < lo || x > hi || y < lo || y > hi) v = kCutOff;
    }
    xy[2 * d] = x;
    xy[2 * d + 1] = y;
    vis[d] = v;
  }
}

namespace {
// One output coordinate's two source taps and the weight of the second.
struct Taps {
  std::vector<int> i0, i1;
  std::vector<float> f;
};
Taps make_taps(int start, int len, int out) {
  Taps t;
  t.i0.resize(out), t.i1.resize(out), t.f.resize(out);
  const float scale = (float)len / (float)out;
  for (int o = 0; o < out; ++o) {
    float src = (o + 0.5f) * scale - 0.5f;
    src = std::clamp(src, 0.f, (float)(len - 1));
    const int a = std::min((int)src, len - 1);
    t.i0[o] = start + a;
    t.i1[o] = start + std::min(a + 1, len - 1);
    t.f[o] = src - (float)a;
  }
  return t;
}
}  // namespace

void crop_resize_normalize(const Image& img, const CropRect& r, int input, bool flip, float* chw) {
  FN_CHECK(r.w > 0 && r.h > 0 && r.x0 >= 0 && r.y0 >= 0 && r.x0 + r.w <= img.w && r.y0 + r.h <= img.h,
           "crop outside the image");
  const Taps tx = make_taps(r.x0, r.w, input), ty = make_taps(r.y0, r.h, input);
  float scale[3], bias[3];
  for (int c = 0; c < 3; ++c) scale[c] = 1.f / (255.f * kStd[c]), bias[c] = -kMean[c] / kStd[c];

  // Vertical pass first, one output row at a time, over only the crop's columns; then the horizontal pass
  // reads that blended row. Each source row pair is touched once per output row.
  const int row_len = img.w * 3;
  std::vector<float> row((size_t)img.w * 3);
  const size_t plane = (size_t)input * input;
  for (int oy = 0; oy < input; ++oy) {
    const uint8_t* a = img.rgb.data() + (size_t)ty.i0[oy] * row_len;
    const uint8_t* b = img.rgb.data() + (size_t)ty.i1[oy] * row_len;
    const float fb = ty.f[oy], fa = 1.f - fb;
    for (int k = r.x0 * 3; k < (r.x0 + r.w) * 3; ++k) row[k] = fa * a[k] + fb * b[k];
    float* out0 = chw + (size_t)oy * input;
    for (int ox = 0; ox < input; ++ox) {
      const float* p = &row[(size_t)tx.i0[ox] * 3];
      const float* q = &row[(size_t)tx.i1[ox] * 3];
      const float g = tx.f[ox], h = 1.f - g;
      const int dx = flip ? input - 1 - ox : ox;
      for (int c = 0; c < 3; ++c) out0[c * plane + dx] = (h * p[c] + g * q[c]) * scale[c] + bias[c];
    }
  }
}

void mirror_chw(float* chw, int64_t n, int input) {
  const int64_t rows = n * 3 * input;
  for (int64_t r = 0; r < rows; ++r) std::reverse(chw + r * input, chw + (r + 1) * input);
}

}  // namespace fn::data
