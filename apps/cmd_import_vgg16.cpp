// fashionnet import-vgg16: converts torchvision's ImageNet VGG16 weights (saved as safetensors, see
// bench/pytorch/torch_to_safetensors.py) into a FashionNet initialisation file with our tensor names. The
// trainer loads it with missing tensors allowed: the layers it does not cover start from random values.
// Kept as an alias of `fashionnet import --arch vgg16` (apps/cmd_import.cpp), with its --width and --no-fc6.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "apps/command.h"
#include "fashionnet/train/vgg16_import.h"

namespace {

int run_import_vgg16(int argc, char** argv) {
  CLI::App app{"Map torchvision VGG16 weights (safetensors) onto FashionNet's trunk, conv5 branches and fc6_global"};
  std::string from, out;
  fn::Vgg16ImportOptions opt;
  bool no_fc6 = false, quiet = false;
  app.add_option("--from", from, "torchvision vgg16 state_dict as .safetensors")->required()->check(CLI::ExistingFile);
  app.add_option("--out", out, "FashionNet init file to write (.safetensors)")->required();
  app.add_option("--width", opt.width, "channel multiplier of the file (torchvision's weights: 1)")
      ->check(CLI::Range(1e-6, 1.0));
  app.add_flag("--no-fc6", no_fc6,
               "leave fc6_global out (needed unless the model's fc6_global is 4096 x 25088, the paper preset)");
  app.add_flag("-q,--quiet", quiet, "print only the summary");
  CLI11_PARSE(app, argc, argv);
  opt.map_fc6 = !no_fc6;

  std::vector<std::string> report;
  fn::NamedTensors written = fn::import_vgg16(from, out, &report, opt);
  if (!quiet)
    for (const auto& line : report) std::printf("  %s\n", line.c_str());
  size_t bytes = 0;
  for (const auto& [name, t] : written) bytes += t.nbytes();
  std::printf("wrote %zu tensors (%.1f MB) to %s\n", written.size(), double(bytes) / 1e6, out.c_str());
  return 0;
}

}  // namespace

FN_COMMAND("import-vgg16", "convert torchvision VGG16 weights (.safetensors) into a FashionNet init file",
           run_import_vgg16);
