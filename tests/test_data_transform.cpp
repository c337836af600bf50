// The geometry of the input pipeline: crop rectangle, the landmark transform, the flip (x mirrored as
// x' = input-1-x, L/R slots and their visibility swapped), and the resize agreeing with the landmark map.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/error.h"
#include "data/transform.h"
#include "tests/support/test_image.h"

using namespace fn::data;

namespace {

Landmarks all_absent() {
  Landmarks lm;
  for (int s = 0; s < kSlots; ++s) lm.x[s] = lm.y[s] = 0, lm.vis[s] = kAbsent;
  return lm;
}

// R channel = x, G channel = y, B = 128: lets a test read back which source position a pixel came from.
Image ramp(int w, int h) {
  return fn::test::image_from(w, h, [](int x, int y) { return std::array<uint8_t, 3>{(uint8_t)x, (uint8_t)y, 128}; });
}

float denorm(float v, int c) { return (v * kStd[c] + kMean[c]) * 255.f; }

}  // namespace

TEST_CASE("crop rectangle: whole image, bbox, margin, clipping, bbox outside the image") {
  Sample s;
  s.image = "img/x.jpg";
  CropRect r = crop_rect(s, 300, 200, 0.f);
  CHECK((r.x0 == 0 && r.y0 == 0 && r.w == 300 && r.h == 200));
  s.has_bbox = true;
  s.x1 = 100, s.y1 = 50, s.x2 = 200, s.y2 = 150;
  r = crop_rect(s, 300, 200, 0.f);
  CHECK((r.x0 == 100 && r.y0 == 50 && r.w == 100 && r.h == 100));
  r = crop_rect(s, 300, 200, 0.1f);
  CHECK((r.x0 == 90 && r.y0 == 40 && r.w == 120 && r.h == 120));
  r = crop_rect(s, 300, 200, 0.6f);  // clipped to the image
  CHECK((r.x0 == 40 && r.y0 == 0 && r.w == 220 && r.h == 200));
  s.x2 = 301;
  try {
    crop_rect(s, 300, 200, 0.f);
    FAIL("a bbox outside the image must be an error");
  } catch (const fn::Error& e) {
    CHECK(std::string(e.what()).find("img/x.jpg: bbox (100, 50, 301, 150) is outside the 300x200 image") != std::string::npos);
  }
}

TEST_CASE("landmark transform: pixel centres map to pixel centres") {
  const CropRect r{50, 20, 100, 200};
  const InputMap m = input_map(r, 100, false);
  float x, y;
  m.map(50, 20, x, y);  // the crop's first pixel centre
  CHECK(x == Approx(0.0f));
  CHECK(y == Approx(-0.25f));  // y is downscaled 2x: pixel 0 covers [-0.5, 1.5] of the source rows
  m.map(149, 219, x, y);      // the crop's last pixel centre
  CHECK(x == Approx(99.0f));
  CHECK(y == Approx(99.25f));
  m.map(100, 120, x, y);      // the crop's centre stays the input's centre
  CHECK(x == Approx(50.0f));
  CHECK(y == Approx(49.75f));
}

TEST_CASE("flip: x' = input-1-x, left and right slots swap with their visibility") {
  Landmarks lm = all_absent();
  lm.x[kLCollar] = 60, lm.y[kLCollar] = 30, lm.vis[kLCollar] = kOccluded;
  lm.x[kRCollar] = 140, lm.y[kRCollar] = 32, lm.vis[kRCollar] = kVisible;
  lm.x[kLHem] = 70, lm.y[kLHem] = 180, lm.vis[kLHem] = kCutOff;
  lm.x[kRHem] = 130, lm.y[kRHem] = 181, lm.vis[kRHem] = kVisible;
  const CropRect r{0, 0, 200, 200};
  float a[16], b[16];
  uint8_t va[8], vb[8];
  transform_landmarks(lm, input_map(r, 100, false), a, va);
  transform_landmarks(lm, input_map(r, 100, true), b, vb);
  for (int s = 0; s < kSlots; ++s) {
    const int m = mirror_slot(s);
    INFO("slot " << slot_name(s));
    CHECK(vb[s] == va[m]);  // visibility travels with the point
    if (va[m] == kAbsent) continue;
    CHECK(b[2 * s] == Approx(99.f - a[2 * m]));  // mirrored x
    CHECK(b[2 * s + 1] == Approx(a[2 * m + 1]));  // y unchanged
  }
  // After the flip the L slot is again the image-left point: the flipped right collar.
  CHECK(b[2 * kLCollar] < b[2 * kRCollar]);
  CHECK(vb[kLCollar] == kVisible);
  CHECK(vb[kRCollar] == kOccluded);
  CHECK(vb[kLHem] == kVisible);
  CHECK(vb[kRHem] == kCutOff);
  // Absent slots stay absent, at (0, 0), flip or not.
  CHECK((vb[kLSleeve] == kAbsent && b[2 * kLSleeve] == 0.f && b[2 * kLSleeve + 1] == 0.f));
  // Flipping twice is the identity.
  const CropRect same{0, 0, 100, 100};
  Landmarks once = all_absent();
  for (int s = 0; s < kSlots; ++s) once.x[s] = b[2 * s] , once.y[s] = b[2 * s + 1], once.vis[s] = vb[s];
  float c[16];
  uint8_t vc[8];
  transform_landmarks(once, input_map(same, 100, true), c, vc);
  for (int s = 0; s < kSlots; ++s) {
    CHECK(vc[s] == va[s]);
    if (va[s] != kAbsent) CHECK(c[2 * s] == Approx(a[2 * s]).margin(1e-4));
  }
}

TEST_CASE("a landmark the crop leaves outside the input becomes cut off") {
  Landmarks lm = all_absent();
  lm.x[kLHem] = 10, lm.y[kLHem] = 10, lm.vis[kLHem] = kVisible;    // outside the crop below
  lm.x[kRHem] = 60, lm.y[kRHem] = 60, lm.vis[kRHem] = kOccluded;   // inside
  float xy[16];
  uint8_t vis[8];
  transform_landmarks(lm, input_map(CropRect{40, 40, 50, 50}, 50, false), xy, vis);
  CHECK(vis[kLHem] == kCutOff);
  CHECK(vis[kRHem] == kOccluded);
  CHECK(xy[2 * kRHem] == Approx(20.f));
}

TEST_CASE("resize samples exactly where the landmark map points (up, down, flipped)") {
  const Image img = ramp(220, 240);
  struct Case {
    CropRect r;
    int input;
    bool flip;
  };
  for (const Case c : {Case{{10, 20, 200, 200}, 100, false}, Case{{10, 20, 200, 200}, 100, true},
                       Case{{30, 40, 50, 80}, 160, false}, Case{{30, 40, 50, 80}, 160, true}, Case{{0, 0, 220, 240}, 224, true}}) {
    const int in = c.input;
    std::vector<float> out((size_t)3 * in * in);
    crop_resize_normalize(img, c.r, in, c.flip, out.data());
    const InputMap m = input_map(c.r, in, c.flip);
    int checked = 0;
    // Interior source points (away from the clamped border): the output pixel the map sends a source
    // point to must hold that source point's (x, y) in its R and G channels.
    for (float sx = c.r.x0 + 2.f; sx < c.r.x0 + c.r.w - 2; sx += 7.3f)
      for (float sy = c.r.y0 + 2.f; sy < c.r.y0 + c.r.h - 2; sy += 9.1f) {
        float ox, oy;
        m.map(sx, sy, ox, oy);
        const int px = (int)std::lround(ox), py = (int)std::lround(oy);
        // Read back at the rounded pixel, and predict its source position with the inverse map.
        const float rx = denorm(out[(size_t)0 * in * in + py * in + px], 0);
        const float gy = denorm(out[(size_t)1 * in * in + py * in + px], 1);
        const float ux = c.flip ? (float)(in - 1 - px) : (float)px;
        const float src_x = (ux + 0.5f) / m.sx - 0.5f + c.r.x0, src_y = (py + 0.5f) / m.sy - 0.5f + c.r.y0;
        INFO("source (" << sx << ", " << sy << ") -> (" << ox << ", " << oy << ")");
        REQUIRE(rx == Approx(src_x).margin(0.02));
        REQUIRE(gy == Approx(src_y).margin(0.02));
        REQUIRE(std::fabs(rx - sx) <= 0.5f / m.sx + 0.02f);  // within half an output pixel of the point
        ++checked;
      }
    CHECK(checked > 50);
  }
}

TEST_CASE("normalisation uses the ImageNet mean and std") {
  Image img;
  img.w = img.h = 8;
  img.rgb.assign(8 * 8 * 3, 255);
  std::vector<float> out(3 * 4 * 4);
  crop_resize_normalize(img, CropRect{0, 0, 8, 8}, 4, false, out.data());
  for (int c = 0; c < 3; ++c) CHECK(out[c * 16 + 5] == Approx((1.f - kMean[c]) / kStd[c]));
  img.rgb.assign(8 * 8 * 3, 0);
  crop_resize_normalize(img, CropRect{0, 0, 8, 8}, 4, true, out.data());
  for (int c = 0; c < 3; ++c) CHECK(out[c * 16 + 10] == Approx(-kMean[c] / kStd[c]));
}

TEST_CASE("flipped pixels are the mirror of unflipped ones") {
  const Image img = ramp(64, 48);
  std::vector<float> a(3 * 32 * 32), b(3 * 32 * 32);
  crop_resize_normalize(img, CropRect{3, 5, 50, 40}, 32, false, a.data());
  crop_resize_normalize(img, CropRect{3, 5, 50, 40}, 32, true, b.data());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) REQUIRE(b[(c * 32 + y) * 32 + x] == a[(c * 32 + y) * 32 + 31 - x]);
}

TEST_CASE("random crop: inside the rectangle, the area and aspect asked, placed by fx and fy") {
  const CropRect r{10, 20, 200, 100};
  Augment none;
  CropRect c = random_crop(r, none);
  CHECK((c.x0 == r.x0 && c.y0 == r.y0 && c.w == r.w && c.h == r.h));  // the defaults change nothing
  Augment a;
  a.area = 0.5f;
  a.log_ratio = std::log(2.f);  // the rectangle's width x 1, height x 0.5: 200 x 50
  a.fx = 0.f, a.fy = 0.f;
  c = random_crop(r, a);
  CHECK((c.w == 200 && c.h == 50 && c.x0 == 10 && c.y0 == 20));
  a.log_ratio = 0.f;  // both sides x sqrt(0.5): 141 x 71
  c = random_crop(r, a);
  CHECK((c.w == 141 && c.h == 71 && c.x0 == 10 && c.y0 == 20));
  a.fx = 0.9999f, a.fy = 0.9999f;  // the far corner: flush with the rectangle's right and bottom edges
  c = random_crop(r, a);
  CHECK((c.x0 + c.w == 210 && c.y0 + c.h == 120));
  a.fx = 0.5f, a.fy = 0.5f;
  c = random_crop(r, a);
  CHECK((c.x0 == 10 + 30 && c.y0 == 20 + 15));  // floor(0.5 * 60), floor(0.5 * 30)
  a.area = 0.9f, a.log_ratio = std::log(1.f / 3.f);  // too tall for the rectangle: the full height
  c = random_crop(r, a);
  CHECK(c.h == 100);
  CHECK(c.w == 110);  // round(200 * sqrt(0.3))
  // Every draw of the loader's ranges lies inside the rectangle, with at least one pixel.
  for (float area : {0.05f, 0.3f, 1.f})
    for (float lr : {std::log(kCropRatioLo), 0.f, std::log(kCropRatioHi)})
      for (float f : {0.f, 0.37f, 0.99999f}) {
        a.area = area, a.log_ratio = lr, a.fx = f, a.fy = 1.f - f;
        c = random_crop(CropRect{3, 4, 17, 250}, a);
        INFO(area << " " << lr << " " << f);
        CHECK((c.w >= 1 && c.h >= 1 && c.x0 >= 3 && c.y0 >= 4 && c.x0 + c.w <= 20 && c.y0 + c.h <= 254));
      }
}
