// Drawing one synthetic clothes photo: a garment of one of the three clothes types as flat shapes (torso,
// sleeves, legs, skirt), filled with the item's pattern, seen from a view (pose, scale, shift, rotation,
// flip, shear), over a background, with optional occluder and consumer-photo degradations. Landmarks are the
// garment's geometric points (collar corners, sleeve ends, waistline corners, hem corners), transformed
// with the garment, so they are exact.
#pragma once
#include <cstdint>

#include "data/dataset.h"
#include "data/image_io.h"
#include "data/rng.h"

namespace fn::data::synth {

struct Rgb {
  float r = 0, g = 0, b = 0;
};

enum Pattern { kPlain = 0, kStripes, kChecks, kDots, kPatterns };
enum Sleeve { kSleeveless = 0, kShortSleeve, kLongSleeve };
enum TrimPart { kTrimCollar = 0, kTrimSleeve, kTrimWaist, kTrimHem, kTrimParts };
constexpr float kTrimRadius = 9.f;  // canonical pixels (a 256 image), about one conv4 cell at any input size
// Trim colours: saturated and far apart, so a trim reads as a detail whatever the garment's palette.
constexpr int kTrimColours = 6;
constexpr Rgb kTrimPalette[kTrimColours] = {{0.85f, 0.1f, 0.1f},  {0.1f, 0.65f, 0.15f}, {0.12f, 0.2f, 0.85f},
                                            {0.95f, 0.85f, 0.1f}, {0.8f, 0.15f, 0.75f}, {0.1f, 0.8f, 0.85f}};

// The trim part of a landmark slot (collar, sleeve, waist, hem; left and right alike).
inline int trim_part(int slot) { return slot / 2; }

// What makes an item itself: shape and appearance, fixed across its views.
struct Garment {
  int type = 1;            // 1 upper, 2 lower, 3 full
  bool skirt = false;      // lower/full: skirt (else trousers legs)
  int sleeve = kShortSleeve;
  bool v_neck = false;
  bool long_length = true; // trousers vs shorts, long vs short skirt or dress
  float width = 1.f;       // body width factor (slim .. loose)
  float leg_width = 1.f;   // leggings are narrow
  Rgb base, second;
  int pattern = kPlain;
  float period = 12.f, angle = 0.f, phase = 0.f, duty = 0.5f, dot_radius = 3.f;
  bool print = false;      // a small motif on the chest (front views)
  int print_shape = 0;     // 0 disc, 1 square, 2 triangle
  Rgb print_color;
  // Trims: a small coloured disc on each landmark (a button at the collar, a cuff, a waist tab, a hem tag),
  // one colour per part, the same left and right. Look-alike items differ only here (SynthConfig).
  bool trims = false;
  Rgb trim[kTrimParts];    // kTrimCollar, kTrimSleeve, kTrimWaist, kTrimHem
};

// How one photo sees the item.
struct View {
  float cx = 0.5f, cy = 0.5f;  // garment centre, fraction of the image side
  float scale = 1.f;           // 1: the garment fills ~60% of the image height
  float angle = 0.f;           // radians
  float squeeze = 1.f;         // horizontal foreshortening (side views)
  float shear = 0.f;           // horizontal shear of the garment (u += shear * v): a body turning in a pose
  bool mirror = false;         // mirrored photo (pattern mirrored; L/R slots stay image-left/right)
  bool back = false;           // back view: no neckline cut, no chest print
  float arm_l = 0.3f, arm_r = 0.3f;  // sleeve angle from vertical, radians
  float leg_l = 0.05f, leg_r = 0.05f;
  bool consumer = false;       // cluttered background, lighting, blur, noise
  double occlusion = 0.2;      // probability of an occluder patch over one landmark
};

// A studio view: the garment near the centre and upright, scaled in [scale_lo, scale_hi], mirrored 3 times
// in 10, with random sleeve and leg angles. The benchmarks' views start from it and add their variation.
View studio_view(float scale_lo, float scale_hi, Xoshiro256& rng);

struct Drawn {
  Image image;
  Landmarks lm;  // slots of the garment's type filled (vis 0/1/2), others kAbsent
  int x1 = 0, y1 = 0, x2 = 0, y2 = 0;
};

// A width x height photo; the garment's scale follows the shorter side.
Drawn draw(const Garment& g, const View& v, int width, int height, Xoshiro256& rng);
inline Drawn draw(const Garment& g, const View& v, int size, Xoshiro256& rng) { return draw(g, v, size, size, rng); }

}  // namespace fn::data::synth
