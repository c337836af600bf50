// fashionnet eval --checkpoint C --data DIR --benchmark B [--holdout F] [--json FILE] [--html DIR] [--device D]
//                 [--mirror] [--input N]
//   imagefolder: scores every image of DIR, or with --holdout F only the images `train --holdout F` left out.
//   category, landmark: the test split, with the papers' protocol (top-k, per-group attribute recall, landmark
//   error per slot and per variation type, the detection-rate curve: detection.svg with --html).
//   --mirror: each image and its mirror image, the two passes averaged (fashionnet/eval/mirror.h).
//   --input N: run the network at N x N instead of its trained input size (backbones that pool globally).
//   Under mpirun (-np N) the ranks share the images; the results are those of one process.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/atomic_file.h"
#include "apps/command.h"
#include "dist/comm.h"
#include "fashionnet/train/benchmark_weights.h"
#include "fashionnet/train/checkpoint.h"
#include "fashionnet/eval/evaluate.h"
#include "fashionnet/report/html.h"
#include "fashionnet/report/plot.h"
#include "fashionnet/report/report.h"

namespace {
int run_eval(int argc, char** argv) {
  CLI::App app{"Evaluate a checkpoint: retrieval top-k, category, attributes, landmarks"};
  std::string ckpt, root, benchmark = "inshop", device = "auto", json_out, html_dir, ks;
  int input = 0;
  fn::fashionnet::EvalOptions opt;
  app.add_option("--checkpoint", ckpt, "a training checkpoint")->required();
  app.add_option("--data", root, "dataset root")->required();
  app.add_option("--benchmark", benchmark, "inshop | consumer2shop | category | landmark | imagefolder")
      ->capture_default_str()
      ->check(CLI::IsMember({"inshop", "consumer2shop", "category", "landmark", "imagefolder"}));
  app.add_option("--device", device, "auto | cpu | cuda")->capture_default_str();
  app.add_option("--json", json_out, "write the metrics as JSON to this file");
  app.add_option("--html", html_dir, "write report.html, topk.svg and (with landmarks) detection.svg into this folder");
  app.add_option("--k", ks, "retrieval k list, e.g. 1,5,10,20,30,40,50");
  app.add_option("--batch", opt.inference.batch, "images per forward pass")->capture_default_str();
  app.add_option("--threads", opt.inference.threads, "image loader threads")->capture_default_str();
  app.add_flag("--mirror", opt.inference.mirror, "also run each image mirrored left to right and average the two passes");
  app.add_option("--input", input, "run the network at this square input size instead of the trained one "
                 "(lite0, resnet50: they pool their map globally)");
  app.add_flag("--skip-bad", opt.inference.skip_bad, "skip unreadable images (counted)");
  auto* holdout = app.add_option("--holdout", opt.holdout,
                                 "imagefolder: score only the hash hold-out of this fraction, the images "
                                 "`train --holdout F` left out (default: every image of --data)")
                      ->check(CLI::Validator(
                          [](std::string& in) -> std::string {
                            char* end = nullptr;
                            const double x = std::strtod(in.c_str(), &end);
                            return end != in.c_str() && *end == 0 && x > 0 && x <= 1
                                       ? ""
                                       : "must be a fraction above 0 and at most 1 (train's --holdout), got '" +
                                             in + "'";
                          },
                          "FRACTION"));
  CLI11_PARSE(app, argc, argv);
  FN_EXPECT(holdout->count() == 0 || benchmark == "imagefolder", "--holdout applies to --benchmark imagefolder "
            "only: ", benchmark, " carries its own evaluation split");
  if (!ks.empty()) opt.ks = fn::fashionnet::parse_ks(ks);
  fn::Device dev = fn::parse_device(device);
  // Under mpirun the images are split over the ranks and the rows gathered (docs/distributed.md); built
  // before the model, since a CUDA rank takes its GPU here. Every rank computes the metrics; rank 0 alone
  // prints and writes.
  fn::dist::CommOptions co;
  co.device = fn::dist::comm_device(dev);
  fn::dist::Communicator comm(co);
  opt.inference.comm = &comm;
  fn::fashionnet::TrainConfig cfg;
  auto model = fn::fashionnet::model_from_checkpoint(ckpt, dev, &cfg, input);
  opt.inference.bbox_margin = cfg.bbox_margin;  // the images as training cropped them
  fn::data::Dataset ds = fn::data::load_dataset(root, benchmark, benchmark != "imagefolder");
  auto r = fn::fashionnet::evaluate(*model, ds, dev, opt);
  if (comm.rank() != 0) return 0;
  // What the checkpoint was trained on, so that a landmark-only model's empty heads are not read as failures.
  const std::string trained = "trained loss terms (the checkpoint's stages): " + fn::fashionnet::trained_terms(cfg);
  const std::string categories = fn::fashionnet::category_list_warning(
      fn::fashionnet::checkpoint_state(ckpt).category_names, ds.category_names, ckpt, root);
  if (input != 0) std::printf("the network runs at %d x %d (--input)\n", cfg.net.input, cfg.net.input);
  std::printf("%s\n%s%s", trained.c_str(), categories.c_str(), fn::fashionnet::format_eval(r).c_str());
  if (!json_out.empty()) {
    nlohmann::json j = fn::fashionnet::to_json(r);
    j["trained_terms"] = fn::fashionnet::trained_terms(cfg);
    j["input"] = cfg.net.input;  // the size the network ran at
    fn::write_text_file(json_out, j.dump(2) + "\n");
  }
  if (!html_dir.empty()) {
    std::filesystem::create_directories(html_dir);  // topk.svg is written before write_report creates it
    fn::write_text_file(html_dir + "/topk.svg", fn::fashionnet::topk_curve_svg(r));
    const std::string detection = fn::fashionnet::detection_curve_svg(r.heads);
    if (!detection.empty()) fn::write_text_file(html_dir + "/detection.svg", detection);
    fn::fashionnet::ReportOptions ro;
    ro.title = "FashionNet evaluation: " + ckpt;
    ro.run_dir = html_dir;
    ro.notes_html = "<p>" + fn::fashionnet::html_escape(trained) + "</p>";
    if (!categories.empty()) ro.notes_html += "<p><strong>" + fn::fashionnet::html_escape(categories) + "</strong></p>";
    std::printf("report: %s\n", fn::fashionnet::write_report(r, ds, ro).c_str());
  }
  return 0;
}
}  // namespace

FN_COMMAND("eval", "evaluate a checkpoint (retrieval top-k, category, attributes, landmarks)", run_eval);
