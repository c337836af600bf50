// fashionnet train --data DIR --benchmark inshop|consumer2shop|category|landmark|imagefolder --preset P --out RUN
//                  [--device D] [--resume CKPT] [--init INIT.safetensors] [--steps S1,S2] ...
//   category: triplet items are the product folders; landmark: landmark and visibility terms only.
#include <CLI/CLI.hpp>

#include "apps/command.h"
#include "apps/options.h"
#include "fashionnet/train/trainer.h"

namespace {
int run_train(int argc, char** argv) {
  CLI::App app{"Train FashionNet in two stages (landmarks first, then all losses equal)"};
  fn::fashionnet::TrainOptions opt;
  fn::apps::TrainFlags flags;
  std::string device = "auto";
  app.add_option("--data", opt.data_root, "dataset root (DeepFashion layout, or ImageFolder)")->required();
  app.add_option("--benchmark", opt.benchmark,
                 "inshop | consumer2shop | category | landmark | imagefolder (landmark trains the landmark and "
                 "visibility terms only)")
      ->capture_default_str()
      ->check(CLI::IsMember({"inshop", "consumer2shop", "category", "landmark", "imagefolder"}));
  app.add_option("--out", opt.out_dir, "run folder (checkpoints, metrics.jsonl, loss.svg)")->required();
  app.add_option("--device", device, "auto | cpu | cuda")->capture_default_str();
  app.add_option("--resume", opt.resume, "continue from this checkpoint (its configuration is used)");
  app.add_option("--init", opt.init, "start from these weights (e.g. import-vgg16's output)");
  app.add_option("--threads", opt.loader_threads, "image loader threads")->capture_default_str();
  app.add_flag("--skip-bad", opt.skip_bad, "skip unreadable images (counted) instead of stopping");
  app.add_option("--holdout", opt.holdout,
                 "fraction held out for validation: imagefolder images; In-shop training items when validate_every > 0")
      ->capture_default_str();
  int64_t validate_every = -1;  // -1: the preset's (or --config's)
  app.add_option("--validate-every", validate_every,
                 "steps between validations, which pick the best checkpoint (0: off, best by the training loss; "
                 "default: the preset's)")
      ->check(CLI::NonNegativeNumber);
  fn::apps::add_train_flags(app, flags);
  CLI11_PARSE(app, argc, argv);
  opt.device = fn::parse_device(device);
  fn::fashionnet::TrainConfig cfg = fn::apps::make_config(flags);
  if (validate_every >= 0) cfg.validate_every = validate_every;
  auto s = fn::fashionnet::train(cfg, opt);
  std::printf("trained %lld steps in %.1f s (%.1f img/s)%s\n", (long long)s.steps, s.seconds, s.images_per_s,
              s.interrupted ? ", interrupted" : "");
  if (!s.final_checkpoint.empty()) std::printf("final checkpoint: %s\n", s.final_checkpoint.c_str());
  if (!s.best_checkpoint.empty()) std::printf("best checkpoint (validation): %s\n", s.best_checkpoint.c_str());
  return s.interrupted ? 130 : 0;
}
}  // namespace

FN_COMMAND("train", "train FashionNet (two stages, checkpoints, resume, loss curve)", run_train);
