// fashionnet import --arch vgg16|resnet50|efficientnet_lite0: maps ImageNet weights (a state dict converted to
// safetensors by bench/pytorch/torch_to_safetensors.py) onto FashionNet's names, the branch stages once per
// branch, and writes an init file for `train --init` (fashionnet/train/weight_import.h, docs/checkpoint.md).
// The tensors are checked against a target: the model a preset builds (--preset), or else the ImageNet network.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "apps/command.h"
#include "fashionnet/model/config.h"
#include "fashionnet/model/fashionnet.h"
#include "fashionnet/train/weight_import.h"

namespace {

int run_import(int argc, char** argv) {
  CLI::App app{"Map ImageNet weights (safetensors) onto FashionNet's backbone: trunk and both branches"};
  std::string arch_name, from, out, preset;
  double width = 1.0;
  bool quiet = false;
  app.add_option("--arch", arch_name, "the file's network: vgg16, resnet50 or efficientnet_lite0")->required();
  app.add_option("--from", from, "the network's state dict as .safetensors (torch_to_safetensors.py)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--out", out, "FashionNet init file to write (.safetensors)")->required();
  app.add_option("--preset", preset, "check the tensors against the model this preset builds (its backbone must be --arch)");
  app.add_option("--width", width, "without --preset: the file's channel multiplier (ImageNet weights: 1)")
      ->check(CLI::Range(1e-6, 1.0));
  app.add_flag("-q,--quiet", quiet, "print only the summary");
  CLI11_PARSE(app, argc, argv);

  const fn::WeightArch arch = fn::parse_weight_arch(arch_name);
  fn::NamedShapes target;
  std::string against;
  if (!preset.empty()) {
    const fn::fashionnet::TrainConfig cfg = fn::fashionnet::preset(preset);
    FN_EXPECT(cfg.net.backbone.name() == arch_name, "--preset ", preset, " has backbone ", cfg.net.backbone.name(),
              ", not --arch ", arch_name);
    const fn::fashionnet::FashionNet model(cfg.net, /*seed=*/1);
    for (const auto& [name, t] : model.named_state()) target.push_back({name, t.shape()});
    against = "preset " + preset;
  } else {
    target = fn::imported_reference_shapes(arch, width);
    against = std::string("the ImageNet ") + fn::weight_arch_name(arch);
  }

  std::vector<std::string> report;
  const fn::NamedTensors written = fn::import_weights(arch, from, out, target, &report);
  if (!quiet)
    for (const auto& line : report) std::printf("  %s\n", line.c_str());
  size_t bytes = 0;
  for (const auto& [name, t] : written) bytes += t.nbytes();
  std::printf("wrote %zu tensors (%.1f MB, checked against %s) to %s\n", written.size(), double(bytes) / 1e6,
              against.c_str(), out.c_str());
  return 0;
}

}  // namespace

FN_COMMAND("import", "convert ImageNet weights (vgg16, resnet50, efficientnet_lite0) into a FashionNet init file",
           run_import);
