// Mirror-averaged inference (`eval --mirror`, `embed --mirror`, `search --mirror`): each image goes through
// the network twice, as it is and mirrored left to right (the view training's random flip shows as often),
// and the two passes are averaged, as retrieval systems commonly average a descriptor with its mirror
// image's. The mirrored pass's landmarks are mapped back first: x -> (S - 1) / S - x in [0, 1] of an S-pixel
// input (the loader's pixel-centre convention, data/transform.h), and each L/R pair of slots swapped. The
// embedding, the category and attribute logits, the landmarks and the visibility logits are averaged; a slot
// is visible where the averaged logits say so (visible_from_logits). Off by default: every figure in the docs
// without "mirror" in it is one pass.
#pragma once
#include <cstdint>
#include <vector>

#include "fashionnet/model/fashionnet.h"

namespace fn::fashionnet {

// What one forward pass predicts, on the host, row-major per image.
struct HostOutputs {
  int64_t n = 0;
  std::vector<float> embedding;     // n x fc7_fusion
  std::vector<float> category;      // n x categories (logits)
  std::vector<float> attributes;    // n x attributes (logits); empty when the model has none
  std::vector<float> landmark_loc;  // n x kSlots x (x, y) in [0, 1] of the input
  std::vector<float> landmark_vis;  // n x kSlots x (visible, not visible) logits
};

// The model's forward of `images` (N, 3, S, S), landmark_pool at `at` (undefined: at its own predictions).
HostOutputs forward_to_host(const FashionNet& model, const Tensor& images, const PoolAt& at);

// o = (o + m mapped back) / 2, where m holds the outputs for the mirror images of o's images, of `input`
// pixels a side.
void average_with_mirrored(HostOutputs& o, const HostOutputs& m, int input);

}  // namespace fn::fashionnet
