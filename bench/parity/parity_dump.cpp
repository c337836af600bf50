// parity_dump: writes one PyTorch-parity case (bench/parity/parity_case.h) for bench/pytorch/parity.py:
// random weights, a random P x K batch, one forward + loss + backward on --device.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "core/device.h"
#include "bench/parity/parity_case.h"

namespace {

int run(int argc, char** argv) {
  CLI::App app{"Write a FashionNet forward/backward case for the PyTorch parity check (bench/pytorch/parity.py)"};
  std::string out, preset = "tiny", device = "cpu", pool_mode, mining, backbone;
  double width = 0;
  int input = 0, P = 0, K = 0;
  uint64_t seed = 1;
  app.add_option("--out", out, "folder to write (model, inputs, outputs .safetensors)")->required();
  app.add_option("--preset", preset, "paper | cpu-small | tiny | resnet-tiny | ...")->capture_default_str();
  app.add_option("--device", device, "cpu | cuda")->capture_default_str();
  app.add_option("--width", width, "override the channel width multiplier");
  app.add_option("--input", input, "override the input size (multiple of 32)");
  using fn::fashionnet::choice_names;
  using fn::fashionnet::choice_names_text;
  using fn::fashionnet::Backbone;
  using fn::fashionnet::PoolMode;
  app.add_option("--backbone", backbone, "override the backbone: " + choice_names_text<Backbone>(" | "))
      ->check(CLI::IsMember(choice_names<Backbone>()));
  using fn::fashionnet::TripletMining;
  app.add_option("--pool-mode", pool_mode, choice_names_text<PoolMode>(" | "))->check(CLI::IsMember(choice_names<PoolMode>()));
  app.add_option("--mining", mining, choice_names_text<TripletMining>(" | "))
      ->check(CLI::IsMember(choice_names<TripletMining>()));
  app.add_option("--P", P, "items per batch")->check(CLI::Range(2, 64));
  app.add_option("--K", K, "images per item")->check(CLI::Range(2, 64));
  app.add_option("--seed", seed, "weights and batch seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  fn::fashionnet::ParityCaseOptions opt;
  opt.cfg = fn::fashionnet::preset(preset);
  if (!backbone.empty()) opt.cfg.net.backbone = backbone;
  if (width > 0) opt.cfg.net.width = width;
  if (input > 0) opt.cfg.net.input = input;
  if (!pool_mode.empty()) opt.cfg.net.pool_mode = pool_mode;
  if (!mining.empty()) opt.cfg.triplet_mining = mining;
  if (P > 0) opt.cfg.P = P;
  if (K > 0) opt.cfg.K = K;
  opt.seed = seed;
  opt.device = fn::parse_device(device);
  auto sum = fn::fashionnet::write_parity_case(out, opt);
  std::printf("parity case %s: %s, %s, %lld parameters, %lld buffers, triplet active %.2f, losses:", out.c_str(),
              opt.cfg.net.backbone.name().c_str(), fn::device_name(opt.device), (long long)sum.parameters,
              (long long)sum.buffers, sum.triplet_active);
  for (auto& [name, v] : sum.losses) std::printf(" %s %.6g", name.c_str(), v);
  std::printf("\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
