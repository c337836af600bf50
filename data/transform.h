// Geometry of the input pipeline: which source rectangle becomes the network input, the ONE mapping of
// source-pixel coordinates to input coordinates (used for landmarks; the resize samples with its inverse),
// the horizontal flip, and the fused crop + bilinear resize + flip + normalise of the pixels.
//
// Coordinates are pixel centres: pixel i covers [i-0.5, i+0.5]. A crop of width w starting at x0, resized
// to `input` pixels, maps x to (x - x0 + 0.5) * input / w - 0.5 (align_corners=False). The flip mirrors
// pixel i to input-1-i, so x' = input-1-x, and swaps the L/R slots of every pair.
#pragma once
#include "data/dataset.h"
#include "data/image_io.h"

namespace fn::data {

struct CropRect {
  int x0 = 0, y0 = 0, w = 0, h = 0;  // integer source pixels, inside the image
};

// The sample's bbox widened by `margin` times its width/height on each side, clipped to the image; the
// whole image when the sample has no bbox. Throws fn::Error naming the image when the bbox does not lie
// inside the image (the annotation and the photo disagree).
CropRect crop_rect(const Sample& s, int img_w, int img_h, float margin);

// One image's random choices, drawn by the loader from that image's own seed: the flip, and a random crop of
// the crop rectangle (after torchvision's RandomResizedCrop): `area` of the rectangle's area, its width and
// height scaled by sqrt(area * ratio) and sqrt(area / ratio), ratio = exp(log_ratio), placed at fractions fx,
// fy of the room left on each axis. The ratio is relative to the rectangle's own shape because the resize
// stretches the crop to a square: it is the stretch the network sees beyond the unaugmented input's. The
// defaults are no change.
struct Augment {
  bool flip = false;
  float area = 1.f, log_ratio = 0.f, fx = 0.5f, fy = 0.5f;
};
// The loader draws the ratio log-uniformly from [3/4, 4/3], as RandomResizedCrop does.
constexpr float kCropRatioLo = 3.f / 4.f, kCropRatioHi = 4.f / 3.f;

// The sub-rectangle of `r` that `a` describes, in whole pixels: width round(r.w * sqrt(area * ratio)) and
// height round(r.h * sqrt(area / ratio)), each clamped to [1, r's side] (a crop too wide for the rectangle
// takes its full width rather than a redraw); x0 = r.x0 + floor(fx * (r.w - w + 1)), at most r.x0 + r.w - w.
CropRect random_crop(const CropRect& r, const Augment& a);

// Source pixels -> network-input pixels.
struct InputMap {
  float x0 = 0, y0 = 0, sx = 1, sy = 1;
  int input = 0;
  bool flip = false;
  void map(float x, float y, float& ox, float& oy) const {
    ox = (x - x0 + 0.5f) * sx - 0.5f;
    oy = (y - y0 + 0.5f) * sy - 0.5f;
    if (flip) ox = (float)(input - 1) - ox;
  }
};
InputMap input_map(const CropRect& r, int input, bool flip);

// Landmarks into input coordinates: xy[2*slot] = x, xy[2*slot+1] = y, and vis[slot] (the Vis code). A
// flip swaps each L/R pair (with its visibility), so slot 0 stays the landmark on the image's left side.
// A landmark the crop leaves outside the input becomes kCutOff; kAbsent slots get (0, 0).
void transform_landmarks(const Landmarks& lm, const InputMap& m, float* xy, uint8_t* vis);

// ImageNet normalisation of RGB in [0, 1].
constexpr float kMean[3] = {0.485f, 0.456f, 0.406f};
constexpr float kStd[3] = {0.229f, 0.224f, 0.225f};

// Crops `r` out of `img`, resizes it to input x input (separable bilinear, pixel-centre aligned, with
// precomputed tap tables), mirrors it when `flip`, normalises, and writes planar CHW floats to `chw`.
void crop_resize_normalize(const Image& img, const CropRect& r, int input, bool flip, float* chw);

// Mirrors `n` planar CHW images of input x input left to right in place: what crop_resize_normalize's flip
// does, after the fact (the flip only moves each output pixel, so the result is bitwise the flipped load).
void mirror_chw(float* chw, int64_t n, int input);

}  // namespace fn::data
