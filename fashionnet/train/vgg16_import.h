// Initialising FashionNet from torchvision's ImageNet VGG16 (torchvision.models.vgg16, without batch norm),
// converted to safetensors (bench/pytorch/torch_to_safetensors.py; docs/checkpoint.md). `fashionnet import --arch vgg16`
// reaches it through fashionnet/train/weight_import.h.
//
// torchvision name                  -> our name(s)
//   features.{0,2}.weight|bias      -> trunk.conv1_1, trunk.conv1_2
//   features.{5,7}                  -> trunk.conv2_1, trunk.conv2_2
//   features.{10,12,14}             -> trunk.conv3_1 .. trunk.conv3_3
//   features.{17,19,21}             -> trunk.conv4_1 .. trunk.conv4_3
//   features.{24,26,28}             -> conv5_global.conv5_1 .. conv5_3  AND  conv5_pose.conv5_1 .. conv5_3
//   classifier.0 (fc6, 4096x25088)  -> fc6_global (optional: only where the model's fc6_global has that shape)
//   classifier.3 (fc7), classifier.6 (fc8, the 1000 ImageNet classes): not used
// Conv weights are (out, in, 3, 3) and linear weights (out, in) in both engines, so tensors copy unchanged.
// A layer's buffers (batch norm's running_mean / running_var) would map like its weight and bias where a
// file has them; VGG16 has none (vgg16_import.cpp, kLayerState).
//
// The layer list and the width multiplier's rounding are the network's (fashionnet/model/vgg16.h): conv widths
// scaled_channels(c, width) = round(c * width), at least 4 (the 3 input channels stay 3), fc6
// scaled_channels(4096, width) x (scaled_channels(512, width) * 7 * 7). So a file at a width has the shapes the
// network at that width expects. Real torchvision weights are width 1; smaller widths exist for tests and for
// VGG16-shaped files of our own.
#pragma once
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "fashionnet/model/vgg16.h"

namespace fn {

struct Vgg16ImportOptions {
  double width = 1.0;   // channel multiplier of the file (and of the model it initialises)
  bool map_fc6 = true;  // classifier.0 -> fc6_global when the file has it
};

// torchvision's index of a conv in vgg16.features (features.<index>.weight): each conv is followed by its ReLU,
// each stage by its max pool: conv1_1 0, conv1_2 2, conv2_1 5, ..., conv5_3 28.
int vgg16_torchvision_index(const fashionnet::Vgg16Layer& layer);

// The shapes torchvision's vgg16 state_dict has at `width` (features.* and classifier.*), name -> shape.
// Used to check a file, and by tests to build one.
std::vector<std::pair<std::string, Shape>> vgg16_torchvision_shapes(double width = 1.0);

// Maps a torchvision VGG16 file onto our names. Checks that every features.* tensor is there with the VGG16
// shape at opt.width and reports all mismatches together (naming the file, e.g. one from another network or
// from vgg16_bn). A "module." prefix (saved from DataParallel) is accepted. F64 tensors are converted to F32.
// `report`, when given, receives one line per mapped or skipped tensor.
NamedTensors map_vgg16(const SafetensorsFile& tv, std::vector<std::string>* report = nullptr,
                       const Vgg16ImportOptions& opt = {});

// Reads `from`, maps it, writes `out` with metadata {"format": "fashionnet-init", "source": from,
// "source_format": "torchvision-vgg16", "width": ...}. Returns the tensors written.
NamedTensors import_vgg16(const std::string& from, const std::string& out, std::vector<std::string>* report = nullptr,
                          const Vgg16ImportOptions& opt = {});

}  // namespace fn
