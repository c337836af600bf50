// fashionnet train --data DIR --benchmark inshop|consumer2shop|category|landmark|imagefolder --preset P --out RUN
//                  [--device D] [--resume CKPT] [--init INIT.safetensors] [--steps S1,S2] ...
//   category: triplet items are the product folders; landmark: landmark and visibility terms only.
// Under mpirun (docs/distributed.md) each process is a rank of one run: a global batch of ranks x --batch,
// gradients averaged across the ranks, rank 0 writing the run folder. An error on any rank ends every rank.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "apps/command.h"
#include "apps/options.h"
#include "dist/comm.h"
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
  double bucket_mb = double(opt.bucket_bytes) / (1 << 20), timeout_s = 300;
  app.add_option("--bucket-mb", bucket_mb, "MPI/NCCL ranks: gradient bucket size in MiB")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 4096.0));
  app.add_option("--collective-timeout", timeout_s,
                 "MPI/NCCL ranks: seconds a collective may wait for the other ranks before the job is ended "
                 "(a rank died or hangs; 0: wait for ever)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--stop-after", opt.stop_after,
                 "stop once this many steps (over all stages) are done, saving last.safetensors as Ctrl-C does, "
                 "so that --resume continues the run")
      ->check(CLI::PositiveNumber);
  app.add_option("--check-identical-every", opt.check_identical_every,
                 "MPI/NCCL ranks: every N steps check that the ranks' parameters are bitwise equal (debugging)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--dist-alone", opt.dist_alone,
               "take the data-parallel path (buckets, NCCL on a GPU) even in a single process: to measure its "
               "overhead against a plain run");
  fn::apps::add_train_flags(app, flags);
  CLI11_PARSE(app, argc, argv);
  opt.device = fn::parse_device(device);
  opt.bucket_bytes = size_t(bucket_mb * (1 << 20));
  fn::dist::CommOptions co;
  co.device = fn::dist::comm_device(opt.device, opt.dist_alone);
  co.timeout_s = timeout_s;
  fn::dist::Communicator comm(co);  // a single process without mpirun
  opt.comm = &comm;
  fn::fashionnet::TrainConfig cfg = fn::apps::make_config(flags);
  if (validate_every >= 0) cfg.validate_every = validate_every;
  fn::fashionnet::TrainSummary s;
  try {
    s = fn::fashionnet::train(cfg, opt);
  } catch (const std::exception& e) {
    if (comm.size() == 1) throw;
    // The others wait in a collective for this rank: end them all, naming the rank.
    std::fflush(stdout);
    comm.abort_job(fn::cat("fashionnet train: error on ", comm.describe(), ": ", e.what()), 1);
  }
  // Ctrl-C: 130, as a shell reports an interrupted command; --stop-after reached: 0.
  const bool by_ctrl_c = s.interrupted && !(opt.stop_after > 0 && s.steps == opt.stop_after);
  if (comm.rank() != 0) return by_ctrl_c ? 130 : 0;
  std::printf("trained %lld steps in %.1f s (%.1f img/s)%s\n", (long long)s.steps, s.seconds, s.images_per_s,
              s.interrupted ? ", interrupted" : "");
  if (!s.final_checkpoint.empty()) std::printf("final checkpoint: %s\n", s.final_checkpoint.c_str());
  if (!s.best_checkpoint.empty()) std::printf("best checkpoint (validation): %s\n", s.best_checkpoint.c_str());
  return by_ctrl_c ? 130 : 0;
}
}  // namespace

FN_COMMAND("train", "train FashionNet (two stages, checkpoints, resume, loss curve)", run_train);
