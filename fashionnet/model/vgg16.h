// VGG16's convolutions (Simonyan & Zisserman 2015, configuration D), the one list of them: FashionNet's trunk
// and conv5 branches are built from it (fashionnet.cpp), and the torchvision import maps its files onto it
// (fashionnet/train/vgg16_import.h). Every conv is 3x3, pad 1, followed by a ReLU; a 2x2 max pool ends each stage.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>

namespace fn::fashionnet {

struct Vgg16Layer {
  const char* name;  // "conv1_1" .. "conv5_3": also the checkpoint's tensor names (trunk.conv1_1.weight, ...)
  int stage;         // 1..5
  int in, out;       // channels at width 1 (conv1_1's 3 input channels are the image's)
};

inline constexpr int kVgg16ImageChannels = 3;
inline constexpr std::array<Vgg16Layer, 13> kVgg16Layers = {{
    {"conv1_1", 1, 3, 64},     {"conv1_2", 1, 64, 64},    {"conv2_1", 2, 64, 128},   {"conv2_2", 2, 128, 128},
    {"conv3_1", 3, 128, 256},  {"conv3_2", 3, 256, 256},  {"conv3_3", 3, 256, 256},  {"conv4_1", 4, 256, 512},
    {"conv4_2", 4, 512, 512},  {"conv4_3", 4, 512, 512},  {"conv5_1", 5, 512, 512},  {"conv5_2", 5, 512, 512},
    {"conv5_3", 5, 512, 512},
}};

// The width multiplier's rounding, the one rule for the network and for VGG16 files: round(base * width), at
// least 4. (The presets give 64 -> 64 at width 1, 16 at 1/4 (cpu-small), 4 at 1/16 (tiny).)
inline constexpr int kMinScaledChannels = 4;
inline int scaled_channels(int base, double width) {
  return std::max(kMinScaledChannels, int(std::lround(double(base) * width)));
}

// A layer's channels at `width`; the image's 3 input channels stay 3.
struct Vgg16Channels {
  int in, out;
};
inline Vgg16Channels vgg16_channels(const Vgg16Layer& l, double width) {
  return {l.in == kVgg16ImageChannels ? kVgg16ImageChannels : scaled_channels(l.in, width), scaled_channels(l.out, width)};
}

// Each stage's output channels at `width` (stages 1..5 at [0..4]).
inline std::array<int, 5> vgg16_stage_channels(double width) {
  std::array<int, 5> ch{};
  for (const Vgg16Layer& l : kVgg16Layers) ch[size_t(l.stage - 1)] = scaled_channels(l.out, width);
  return ch;
}

}  // namespace fn::fashionnet
