#include "data/synth_draw.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace fn::data::synth {
namespace {

struct P {
  float u, v;
};
using Poly = std::vector<P>;  // convex, either winding

constexpr float kPi = 3.14159265f;

// The garment in canonical coordinates: nominal pixels of a 256 image, u to the image's right, v down,
// shapes back to front. Landmarks by slot (only the type's slots are set).
struct Shape {
  std::vector<Poly> cloth;  // filled with the pattern
  std::vector<Poly> skin;   // neckline cut, drawn over the cloth
  P lm[kSlots];
  bool used[kSlots] = {};
};

P add(P a, P b) { return {a.u + b.u, a.v + b.v}; }
P mul(P a, float s) { return {a.u * s, a.v * s}; }

// A sleeve or a leg: a quad from the two top points along direction `d` (unit) for `len`, ending in a
// segment of width `w_end` centred on the end point, which is returned as the landmark.
P limb(std::vector<Poly>& out, P top_outer, P top_inner, P d, float len, float w_end) {
  const P mid = mul(add(top_outer, top_inner), 0.5f);
  const P end = add(mid, mul(d, len));
  const P perp = {-d.v, d.u};
  P c1 = add(end, mul(perp, w_end / 2)), c2 = add(end, mul(perp, -w_end / 2));
  if (std::fabs(c1.u) < std::fabs(c2.u)) std::swap(c1, c2);  // c1: the outer corner
  out.push_back({top_outer, c1, c2, top_inner});
  return end;
}

Poly disc(P c, float r, int n = 14) {
  Poly p;
  for (int i = 0; i < n; ++i) p.push_back({c.u + r * std::cos(2 * kPi * i / n), c.v + r * std::sin(2 * kPi * i / n)});
  return p;
}

void set(Shape& s, int slot, P p) {
  s.lm[slot] = p;
  s.used[slot] = true;
}

// Upper body (also the bodice of a dress): torso, sleeves, neckline.
void upper_part(Shape& s, const Garment& g, const View& v, float top, float bottom, float w_top, float w_bottom, bool dress) {
  for (int side = -1; side <= 1; side += 2) {
    const P shoulder = {side * w_top, top}, armpit = {side * w_top * 0.96f, top + 32};
    const float a = side < 0 ? v.arm_l : v.arm_r;
    const P d = {side * std::sin(a), std::cos(a)};
    P end;
    if (g.sleeve == kSleeveless) end = mul(add(shoulder, armpit), 0.5f);
    else end = limb(s.cloth, shoulder, armpit, d, g.sleeve == kLongSleeve ? 96.f : 34.f, g.sleeve == kLongSleeve ? 20.f : 26.f);
    set(s, side < 0 ? kLSleeve : kRSleeve, end);
  }
  s.cloth.push_back({{-w_top, top}, {w_top, top}, {w_bottom, bottom}, {-w_bottom, bottom}});
  set(s, kLCollar, {-16, top});
  set(s, kRCollar, {16, top});
  if (v.back) s.skin.push_back(disc({0, top - 4}, 11));
  else if (g.v_neck) s.skin.push_back({{-16, top}, {16, top}, {0, top + 30}});
  else s.skin.push_back(disc({0, top}, 16));
  if (!dress) {
    set(s, kLHem, {-w_bottom, bottom});
    set(s, kRHem, {w_bottom, bottom});
  }
}

// Trousers legs hanging from a hip line; the hem landmarks are the centres of the leg openings.
void legs(Shape& s, const Garment& g, const View& v, float hip_v, float hip_w, float len) {
  for (int side = -1; side <= 1; side += 2) {
    const float a = side < 0 ? v.leg_l : v.leg_r;
    const P d = {side * std::sin(a), std::cos(a)};
    const P outer = {side * hip_w, hip_v}, inner = {side * 2.f, hip_v};
    set(s, side < 0 ? kLHem : kRHem, limb(s.cloth, outer, inner, d, len, (g.long_length ? 30.f : 36.f) * g.leg_width));
  }
}

Shape build_shape(const Garment& g, const View& v) {
  Shape s;
  const float w = g.width;
  if (g.type == 1) {
    upper_part(s, g, v, -68, 62, 44 * w, 42 * w, false);
  } else if (g.type == 2) {
    const float ww = 36 * w;
    set(s, kLWaist, {-ww, -70});
    set(s, kRWaist, {ww, -70});
    if (g.skirt) {
      const float hem = g.long_length ? 78.f : 8.f, flare = ww * (g.long_length ? 1.55f : 1.35f);
      s.cloth.push_back({{-ww, -70}, {ww, -70}, {flare, hem}, {-flare, hem}});
      set(s, kLHem, {-flare, hem});
      set(s, kRHem, {flare, hem});
    } else {
      s.cloth.push_back({{-ww, -70}, {ww, -70}, {ww * 1.08f, -25}, {-ww * 1.08f, -25}});
      legs(s, g, v, -25, ww * 1.08f, g.long_length ? 105.f : 30.f);
    }
  } else {
    const float wz = 31 * w;
    upper_part(s, g, v, -74, -12, 40 * w, wz, true);
    set(s, kLWaist, {-wz, -12});
    set(s, kRWaist, {wz, -12});
    if (g.skirt) {
      const float hem = g.long_length ? 92.f : 42.f, flare = wz * 1.7f;
      s.cloth.push_back({{-wz, -12}, {wz, -12}, {flare, hem}, {-flare, hem}});
      set(s, kLHem, {-flare, hem});
      set(s, kRHem, {flare, hem});
    } else {
      legs(s, g, v, -12, wz, g.long_length ? 100.f : 40.f);
    }
  }
  return s;
}

float frac(float x) { return x - std::floor(x); }

Rgb mix(Rgb a, Rgb b, float t) { return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t}; }

// The item's surface colour at canonical (u, v).
Rgb paint(const Garment& g, const View& view, float u, float v) {
  if (g.print && !view.back && g.type != 2) {
    const float du = u, dv = v + 34;  // chest
    const float r = 11;
    const bool in = g.print_shape == 0 ? du * du + dv * dv < r * r
                  : g.print_shape == 1 ? std::fabs(du) < r * 0.85f && std::fabs(dv) < r * 0.85f
                                       : dv < r * 0.8f && dv > -r && std::fabs(du) < (dv + r) * 0.6f;
    if (in) return g.print_color;
  }
  switch (g.pattern) {
    case kStripes: {
      const float t = (u * std::cos(g.angle) + v * std::sin(g.angle)) / g.period + g.phase;
      return frac(t) < g.duty ? g.second : g.base;
    }
    case kChecks: {
      const bool a = frac(u / g.period + g.phase) < g.duty, b = frac(v / g.period + g.phase * 0.7f) < g.duty;
      return a && b ? g.second : (a || b) ? mix(g.base, g.second, 0.45f) : g.base;
    }
    case kDots: {
      const float qy = v / g.period + g.phase;
      const float row = std::floor(qy + 0.5f);
      const float qx = u / g.period + g.phase * 1.3f + 0.5f * (std::fmod(std::fabs(row), 2.f));
      const float dx = (qx - std::floor(qx + 0.5f)) * g.period, dy = (qy - row) * g.period;
      return dx * dx + dy * dy < g.dot_radius * g.dot_radius ? g.second : g.base;
    }
    default: return g.base;
  }
}

struct Canvas {
  int w, h;
  std::vector<float> px;  // h*w*3
  void set(int x, int y, Rgb c) {
    float* p = &px[((size_t)y * w + x) * 3];
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  }
};

// Image-space convex polygon fill; `colour(x, y)` gives each covered pixel's colour.
template <class F>
void fill(Canvas& cv, const std::vector<P>& poly, F&& colour) {
  float minx = 1e9f, maxx = -1e9f, miny = 1e9f, maxy = -1e9f;
  for (const P& p : poly) minx = std::min(minx, p.u), maxx = std::max(maxx, p.u), miny = std::min(miny, p.v), maxy = std::max(maxy, p.v);
  const int x0 = std::max(0, (int)std::ceil(minx)), x1 = std::min(cv.w - 1, (int)std::floor(maxx));
  const int y0 = std::max(0, (int)std::ceil(miny)), y1 = std::min(cv.h - 1, (int)std::floor(maxy));
  const size_t k = poly.size();
  float area = 0;
  for (size_t i = 0; i < k; ++i) area += poly[i].u * poly[(i + 1) % k].v - poly[(i + 1) % k].u * poly[i].v;
  const float sign = area >= 0 ? 1.f : -1.f;
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      bool in = true;
      for (size_t i = 0; i < k && in; ++i) {
        const P& a = poly[i];
        const P& b = poly[(i + 1) % k];
        in = sign * ((b.u - a.u) * (y - a.v) - (b.v - a.v) * (x - a.u)) >= 0;
      }
      if (in) cv.set(x, y, colour(x, y));
    }
}

Rgb random_colour(Xoshiro256& rng, float lo, float hi) { return {rng.uniform(lo, hi), rng.uniform(lo, hi), rng.uniform(lo, hi)}; }

void box_blur(Canvas& cv) {
  const int w = cv.w, h = cv.h;
  std::vector<float> tmp(cv.px.size());
  for (int pass = 0; pass < 2; ++pass) {  // horizontal then vertical, radius 1
    const std::vector<float>& src = pass == 0 ? cv.px : tmp;
    std::vector<float>& dst = pass == 0 ? tmp : cv.px;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c) {
          float s = 0;
          for (int d = -1; d <= 1; ++d) {
            const int xx = pass == 0 ? std::clamp(x + d, 0, w - 1) : x, yy = pass == 1 ? std::clamp(y + d, 0, h - 1) : y;
            s += src[((size_t)yy * w + xx) * 3 + c];
          }
          dst[((size_t)y * w + x) * 3 + c] = s / 3.f;
        }
  }
}

// Canonical -> image (draw()'s to_image): shear, squeeze, rotate and scale about the garment centre.
struct Placement {
  float ox, oy, s, ca, sa, squeeze, shear;
  P operator()(P p) const {
    const float u = p.u * squeeze + shear * p.v;  // exactly p.u * squeeze when there is no shear
    return P{ox + s * (ca * u - sa * p.v), oy + s * (sa * u + ca * p.v)};
  }
};

// The trims, flat discs on the landmarks. Kept out of line: draw()'s floating-point code then compiles as
// it did before trims existed, and the default dataset stays the same to the bit.
[[gnu::noinline]] void draw_trims(Canvas& cv, const Garment& g, const Shape& shape, const Placement& place) {
  for (int k = 0; k < kSlots; ++k)
    if (shape.used[k]) {
      Poly q;
      for (const P& a : disc(shape.lm[k], kTrimRadius)) q.push_back(place(a));
      const Rgb t = g.trim[trim_part(k)];
      fill(cv, q, [&](int, int) { return t; });
    }
}

}  // namespace

View studio_view(float scale_lo, float scale_hi, Xoshiro256& rng) {
  View v;
  v.cx = 0.5f + rng.uniform(-0.04f, 0.04f);
  v.cy = 0.5f + rng.uniform(-0.04f, 0.04f);
  v.scale = rng.uniform(scale_lo, scale_hi);
  v.angle = rng.uniform(-0.05f, 0.05f);
  v.mirror = rng.chance(0.3);
  v.arm_l = rng.uniform(0.12f, 0.6f), v.arm_r = rng.uniform(0.12f, 0.6f);
  v.leg_l = rng.uniform(0.02f, 0.14f), v.leg_r = rng.uniform(0.02f, 0.14f);
  v.occlusion = 0.2;
  return v;
}

Drawn draw(const Garment& g, const View& v, int width, int height, Xoshiro256& rng) {
  const int size = std::min(width, height);  // scales the garment, clutter and occluders
  Canvas cv{width, height, std::vector<float>((size_t)width * height * 3)};

  // Background: a studio backdrop for shop photos, clutter for consumer photos.
  if (!v.consumer) {
    const Rgb bg = mix(Rgb{0.93f, 0.93f, 0.93f}, random_colour(rng, 0.7f, 1.f), 0.3f);
    const float grad = rng.uniform(-0.06f, 0.06f);
    for (int y = 0; y < height; ++y) {
      const float k = 1.f + grad * (y / (float)height - 0.5f);
      for (int x = 0; x < width; ++x) cv.set(x, y, {bg.r * k, bg.g * k, bg.b * k});
    }
  } else {
    const Rgb bg = random_colour(rng, 0.15f, 0.85f);
    for (int i = 0; i < width * height; ++i) cv.px[3 * i] = bg.r, cv.px[3 * i + 1] = bg.g, cv.px[3 * i + 2] = bg.b;
    const int shapes = rng.range(8, 14);
    for (int i = 0; i < shapes; ++i) {
      const Rgb c = random_colour(rng, 0.05f, 0.95f);
      const P centre = {rng.uniform(0.f, (float)width), rng.uniform(0.f, (float)height)};
      const float r = rng.uniform(0.04f, 0.2f) * size;
      if (rng.chance(0.5)) fill(cv, disc(centre, r), [&](int, int) { return c; });
      else fill(cv, {{centre.u - r, centre.v - r * 0.6f}, {centre.u + r, centre.v - r * 0.6f}, {centre.u + r, centre.v + r * 0.6f}, {centre.u - r, centre.v + r * 0.6f}},
                [&](int, int) { return c; });
    }
  }

  // Canonical -> image: rotate, squeeze and scale about the garment centre.
  const Shape shape = build_shape(g, v);
  const float s = v.scale * size / 256.f * 1.1f, ca = std::cos(v.angle), sa = std::sin(v.angle);
  const float ox = v.cx * width, oy = v.cy * height;
  const Placement to_image{ox, oy, s, ca, sa, v.squeeze, v.shear};
  auto to_canon = [&](float x, float y) {
    const float dx = x - ox, dy = y - oy;
    if (v.shear == 0.f) return P{(ca * dx + sa * dy) / (s * v.squeeze), (-sa * dx + ca * dy) / s};
    const float cv = (-sa * dx + ca * dy) / s;
    return P{((ca * dx + sa * dy) / s - v.shear * cv) / v.squeeze, cv};
  };
  auto transform = [&](const Poly& p) { Poly q; for (const P& a : p) q.push_back(to_image(a)); return q; };

  float bx0 = 1e9f, by0 = 1e9f, bx1 = -1e9f, by1 = -1e9f;
  for (const Poly& poly : shape.cloth) {
    const Poly q = transform(poly);
    for (const P& a : q) bx0 = std::min(bx0, a.u), bx1 = std::max(bx1, a.u), by0 = std::min(by0, a.v), by1 = std::max(by1, a.v);
    fill(cv, q, [&](int x, int y) {
      P c = to_canon((float)x, (float)y);
      const float shade = 0.86f + 0.14f * std::cos(c.u * 0.03f);  // a soft fold, so the cloth is not flat
      Rgb col = paint(g, v, v.mirror ? -c.u : c.u, c.v);
      return Rgb{col.r * shade, col.g * shade, col.b * shade};
    });
  }
  const Rgb skin = {0.86f + rng.uniform(-0.05f, 0.05f), 0.70f + rng.uniform(-0.05f, 0.05f), 0.60f + rng.uniform(-0.05f, 0.05f)};
  for (const Poly& poly : shape.skin) fill(cv, transform(poly), [&](int, int) { return skin; });
  if (g.trims) draw_trims(cv, g, shape, to_image);

  Drawn out;
  for (int k = 0; k < kSlots; ++k) out.lm.x[k] = out.lm.y[k] = 0, out.lm.vis[k] = kAbsent;
  for (int k = 0; k < kSlots; ++k)
    if (shape.used[k]) {
      const P p = to_image(shape.lm[k]);
      out.lm.x[k] = p.u, out.lm.y[k] = p.v, out.lm.vis[k] = kVisible;
    }

  // Occluder: a flat patch (a hand, a bag) over one landmark; every landmark under it becomes occluded.
  if (rng.chance(v.occlusion)) {
    std::vector<int> inside;
    for (int k = 0; k < kSlots; ++k)
      if (shape.used[k] && out.lm.x[k] >= 0 && out.lm.x[k] <= width - 1 && out.lm.y[k] >= 0 && out.lm.y[k] <= height - 1)
        inside.push_back(k);
    if (!inside.empty()) {
      const int k = inside[rng.below(inside.size())];
      const float h = rng.uniform(0.05f, 0.08f) * size;
      const float cx = out.lm.x[k] + rng.uniform(-0.4f, 0.4f) * h, cy = out.lm.y[k] + rng.uniform(-0.4f, 0.4f) * h;
      const Rgb c = rng.chance(0.5) ? skin : random_colour(rng, 0.1f, 0.9f);
      fill(cv, {{cx - h, cy - h}, {cx + h, cy - h}, {cx + h, cy + h}, {cx - h, cy + h}}, [&](int, int) { return c; });
      for (int j = 0; j < kSlots; ++j)
        if (shape.used[j] && std::fabs(out.lm.x[j] - cx) <= h && std::fabs(out.lm.y[j] - cy) <= h) out.lm.vis[j] = kOccluded;
    }
  }
  // Cut off: outside the photo. The position is kept, clamped to the border, as an estimate.
  for (int k = 0; k < kSlots; ++k)
    if (shape.used[k] && (out.lm.x[k] < 0 || out.lm.x[k] > width - 1 || out.lm.y[k] < 0 || out.lm.y[k] > height - 1)) {
      out.lm.vis[k] = kCutOff;
      out.lm.x[k] = std::clamp(out.lm.x[k], 0.f, (float)(width - 1));
      out.lm.y[k] = std::clamp(out.lm.y[k], 0.f, (float)(height - 1));
    }
  out.x1 = std::clamp((int)std::floor(bx0), 0, width - 1);
  out.y1 = std::clamp((int)std::floor(by0), 0, height - 1);
  out.x2 = std::clamp((int)std::ceil(bx1) + 1, out.x1 + 1, width);
  out.y2 = std::clamp((int)std::ceil(by1) + 1, out.y1 + 1, height);

  // Consumer photos: uneven, tinted light, a little blur and sensor noise.
  if (v.consumer) {
    const float gain[3] = {rng.uniform(0.7f, 1.25f), rng.uniform(0.7f, 1.25f), rng.uniform(0.7f, 1.25f)};
    const float lx = rng.uniform(-0.5f, 0.5f), ly = rng.uniform(-0.5f, 0.5f);
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        const float light = 1.f + lx * (x / (float)width - 0.5f) + ly * (y / (float)height - 0.5f);
        float* p = &cv.px[((size_t)y * width + x) * 3];
        for (int c = 0; c < 3; ++c) p[c] *= gain[c] * light;
      }
    if (rng.chance(0.7)) box_blur(cv);
    for (float& p : cv.px) p += ((float)(rng.next() >> 40) / (float)(1 << 24) - 0.5f) * 0.06f;
  }

  out.image.w = width;
  out.image.h = height;
  out.image.rgb.resize(cv.px.size());
  for (size_t i = 0; i < cv.px.size(); ++i) out.image.rgb[i] = (uint8_t)std::clamp(cv.px[i] * 255.f + 0.5f, 0.f, 255.f);
  return out;
}

}  // namespace fn::data::synth
